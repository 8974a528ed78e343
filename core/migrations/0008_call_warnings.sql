-- Optional fields a call was sent without because the source sent them in
-- a form that could not be read ("duration: ..."), one per line.
ALTER TABLE ledger ADD COLUMN warnings TEXT;
