-- Kendo's results name a call by the callId Kendo returned: each result
-- looks it up in the ledger and in the callIds of earlier sends, inside
-- the write transaction webhooks wait for. Without these indexes each
-- lookup read the whole ledger, so intake slowed as the ledger grew.
CREATE INDEX IF NOT EXISTS ledger_by_kendo_call_id ON ledger (kendo_call_id);
CREATE INDEX IF NOT EXISTS kendo_call_ids_by_kendo_call_id ON kendo_call_ids (kendo_call_id);
