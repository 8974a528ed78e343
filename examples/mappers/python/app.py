"""A kendo-bridge mapper in Python: put what the source knows about the
deal, the campaign and the mood of a call in Kendo's metadata, read from
the source's own JSON (fields the bridge does not normalise).

Build: ./build.sh (componentize-py --stub-wasi, so the component imports
nothing).
"""

import json

from wit_world import exports
from wit_world.exports.mapper import CallRecord, Decision, Decision_Send

# (metadata key, where the value is in the source's record)
FIELDS = [
    ("dealStage", ("properties", "dealstage")),  # HubSpot
    ("sentiment", ("sentiment",)),  # Salesloft
    ("campaignId", ("campaign_id",)),  # Aloware
]


def lookup(record, path):
    for key in path:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


class Mapper(exports.Mapper):
    def decide(self, call: CallRecord, proposed: Decision) -> Decision:
        if not isinstance(proposed, Decision_Send):
            return proposed
        raw = json.loads(call.raw)
        extra = [("dealIds", ",".join(call.deal_ids))] if call.deal_ids else []
        for key, path in FIELDS:
            value = lookup(raw, path)
            if value not in (None, ""):
                extra.append((key, str(value)))
        outgoing = proposed.value
        outgoing.metadata = list(outgoing.metadata) + extra
        return Decision_Send(outgoing)
