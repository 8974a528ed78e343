-- The first look-back's lower bound, fixed at a checkpoint's first poll so
-- that failing first polls do not slide the window past calls made since.
CREATE TABLE IF NOT EXISTS first_look_back (
    checkpoint TEXT PRIMARY KEY,
    since_ms   INTEGER NOT NULL
);
