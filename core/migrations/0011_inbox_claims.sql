-- How many times a stored delivery was taken for processing. A delivery
-- taken more often than it ended or was deferred stopped its processor
-- (a plugin trap on the Spin app takes the whole instance down, a host
-- crashed mid-way): after a few such, it is closed with that reason
-- instead of being taken again forever.
ALTER TABLE inbox ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
