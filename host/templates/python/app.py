"""A kendo-bridge mapper. `decide` sees each call and the decision the
bridge proposes, and returns the one that stands (see wit/mapper.wit).
Build with `./build.sh`; check with `kendo-bridge plugin check mapper.wasm`.
"""

from wit_world import exports
from wit_world.exports.mapper import CallRecord, Decision, Decision_Send


class Mapper(exports.Mapper):
    def decide(self, call: CallRecord, proposed: Decision) -> Decision:
        if not isinstance(proposed, Decision_Send):
            return proposed
        # Your rules here: change the title, the rep, the metadata, or
        # return Decision_Skip("why").
        outgoing = proposed.value
        outgoing.metadata = list(outgoing.metadata) + [("mappedBy", f"my-mapper ({call.source})")]
        return Decision_Send(outgoing)
