-- Several instances may share this database (several `serve` processes on
-- one file, or Spin instances on one database). A send is claimed in one
-- transaction that also checks the key's pacing, so no two instances send
-- the same call or crowd one key's window.
-- outbox.claim: the token of the claim holding the send in flight; an
-- answer is recorded only under the claim that sent it.
ALTER TABLE outbox ADD COLUMN claim TEXT;
-- outbox.lease_until: past this, the instance holding the claim is presumed
-- gone (its request timed out long ago) and any instance recovers the send
-- as a lost answer. NULL on a claim without a lease: recovered at the next
-- start, as before shared claims.
ALTER TABLE outbox ADD COLUMN lease_until INTEGER;
-- sends.slot: the even-spacing schedule's slot a request was sent in (its
-- `at` may be a little later); the next slot is the last one plus the
-- spacing, whichever instance sent it.
ALTER TABLE sends ADD COLUMN slot INTEGER;
-- A key's 429 Retry-After, honoured by every instance.
CREATE TABLE IF NOT EXISTS key_blocks (
    team  TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
-- Webhook deliveries are claimed the same way, so two instances do not
-- process one delivery at once, and a delivery that fails for a passing
-- reason waits for its own next attempt (not_before, attempts, last_error)
-- while the others go on.
ALTER TABLE inbox ADD COLUMN lease_until INTEGER;
ALTER TABLE inbox ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN last_error TEXT;
