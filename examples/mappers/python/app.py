"""A kendo-bridge mapper in Python: put what the source knows about the
deal and the mood of the call in Kendo's metadata, read from the source's
own JSON.

Build: ./build.sh (componentize-py --stub-wasi, so the component imports
nothing).
"""

import json

from wit_world import exports
from wit_world.exports.mapper import CallRecord, Decision, Decision_Send


class Mapper(exports.Mapper):
    def decide(self, call: CallRecord, proposed: Decision) -> Decision:
        if not isinstance(proposed, Decision_Send):
            return proposed
        raw = json.loads(call.raw)
        extra = []
        if call.deal_ids:
            extra.append(("dealIds", ",".join(call.deal_ids)))
        # HubSpot keeps a call's fields under `properties`.
        fields = raw.get("properties", raw) if isinstance(raw, dict) else {}
        stage = fields.get("dealstage") or fields.get("hs_deal_stage")
        if stage:
            extra.append(("dealStage", str(stage)))
        sentiment = fields.get("sentiment")
        if sentiment:
            extra.append(("sentiment", str(sentiment)))
        outgoing = proposed.value
        outgoing.metadata = list(outgoing.metadata) + extra
        return Decision_Send(outgoing)
