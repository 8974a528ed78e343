-- Write-backs: fields the bridge writes to a source record after Kendo
-- answered for it (HubSpot: Kendo Sent and Kendo Call ID after the 201,
-- Kendo AI Score and Kendo Scored At after Kendo's score webhook). A row is
-- inserted in the same transaction as the event that causes it, so none is
-- lost on a crash; a worker of its own writes it, paced and retried, and
-- never holds up a Kendo send.
CREATE TABLE IF NOT EXISTS write_backs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    -- 'sent' or 'score': one row of each per source record; a later event
    -- of the same kind replaces the values and makes the row pending again.
    kind        TEXT NOT NULL,
    -- The values to write, a JSON object of property name to string.
    fields      TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    not_before  INTEGER NOT NULL,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (source, source_id, kind)
);
CREATE INDEX IF NOT EXISTS write_backs_due ON write_backs (state, not_before);
