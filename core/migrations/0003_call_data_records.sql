-- Salesloft call data records, read incrementally and kept by the call they
-- belong to: `GET /v2/call_data_records` has no filter by call, so the
-- direction of a call is joined here by `call.id` instead of asked for per
-- call. Generic in `source` should another source need the same join.
CREATE TABLE call_data_records (
    source      TEXT NOT NULL,
    call_id     TEXT NOT NULL,
    record      TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    stored_at   INTEGER NOT NULL,
    PRIMARY KEY (source, call_id)
);
CREATE INDEX call_data_records_by_age ON call_data_records (stored_at);
