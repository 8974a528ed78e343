-- A call has one state, the ledger's. The outbox kept a second one
-- (outbox.state: pending, parked, dead) and in_flight_since a third; every
-- change wrote them together, so the ledger already says the same:
-- pending = queued or sending, in flight = sending, parked =
-- outcome-unknown, dead = dead or failed. The outbox now keeps only what
-- a send needs: its payload, when it may go, its attempts and lost
-- answers, the claim and lease it is in flight under, its last error.
UPDATE ledger SET state = 'sending'
 WHERE EXISTS (SELECT 1 FROM outbox o
                WHERE o.source = ledger.source AND o.source_id = ledger.source_id
                  AND o.team = ledger.team AND o.in_flight_since IS NOT NULL);
DROP INDEX IF EXISTS outbox_due;
ALTER TABLE outbox DROP COLUMN state;
ALTER TABLE outbox DROP COLUMN in_flight_since;
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (team, not_before);
