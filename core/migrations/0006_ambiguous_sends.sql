-- Sends whose answer was lost (timeout, dropped connection, crash): Kendo
-- documents no idempotency key, so each may have created the call.
-- outbox.ambiguous: lost answers of the current send (a budget, reset by `settle --resend`).
ALTER TABLE outbox ADD COLUMN ambiguous INTEGER NOT NULL DEFAULT 0;
-- ledger.maybe_duplicated: 1 once any send of the call lost its answer; never reset.
ALTER TABLE ledger ADD COLUMN maybe_duplicated INTEGER NOT NULL DEFAULT 0;
-- Every callId Kendo returned for a call: more than one means a duplicate in Kendo.
CREATE TABLE IF NOT EXISTS kendo_call_ids (
    source        TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    team          TEXT NOT NULL,
    kendo_call_id TEXT NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS kendo_call_ids_by_call ON kendo_call_ids (source, source_id, team);
