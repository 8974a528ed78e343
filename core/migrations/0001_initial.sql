-- The schema of kendo-bridge 0.1 (user_version 1).
CREATE TABLE IF NOT EXISTS checkpoints (
    source      TEXT PRIMARY KEY,
    cursor      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    source        TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    team          TEXT NOT NULL,
    state         TEXT NOT NULL,
    version       TEXT NOT NULL,
    sync_method   TEXT NOT NULL,
    reason_code   TEXT,
    reason        TEXT,
    title         TEXT,
    rep_email     TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    kendo_call_id TEXT,
    seen_count    INTEGER NOT NULL DEFAULT 1,
    first_seen_at INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    PRIMARY KEY (source, source_id, team)
);
CREATE INDEX IF NOT EXISTS ledger_by_state ON ledger (team, state);
CREATE INDEX IF NOT EXISTS ledger_by_update ON ledger (updated_at);
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    source          TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    team            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    not_before      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    in_flight_since INTEGER,
    last_error      TEXT,
    UNIQUE (source, source_id, team)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (team, state, not_before);
CREATE TABLE IF NOT EXISTS inbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    event        TEXT,
    body         BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    processed_at INTEGER,
    error        TEXT,
    UNIQUE (source, delivery_id)
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (processed_at, id);
CREATE TABLE IF NOT EXISTS sends (
    team TEXT NOT NULL,
    at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sends_by_team ON sends (team, at);
CREATE TABLE IF NOT EXISTS counters (
    scope TEXT NOT NULL,
    name  TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (scope, name)
);
CREATE TABLE IF NOT EXISTS paused_teams (
    team            TEXT PRIMARY KEY,
    reason          TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    paused_at       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS held_calls (
    source      TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    body        TEXT,
    transcript  TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (source, source_id)
);
CREATE TABLE IF NOT EXISTS kendo_results (
    event_id    TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    ai_score    REAL,
    is_test     INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS kendo_results_subject ON kendo_results (subject_id);
