-- A digest of the rules the last decisions were made under (the [rules],
-- the rep directory, team routing and the plugin): when it changes, calls
-- skipped for a reason the configuration can fix are decided again.
CREATE TABLE IF NOT EXISTS decision_rules (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL,
    changed_at  INTEGER NOT NULL
);
