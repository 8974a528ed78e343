-- Per source and topic (`poll`, `transcripts`, `dispositions`, `webhook`,
-- ...): when it last worked and the problem it has now, so `status` can say
-- "Salesloft transcripts: 403 since 10:02, check the transcriptions:read
-- scope" instead of the operator reading logs.
CREATE TABLE source_health (
    source        TEXT NOT NULL,
    topic         TEXT NOT NULL,
    ok_at         INTEGER,
    problem       TEXT,
    problem_since INTEGER,
    problem_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, topic)
);
