-- When each source last delivered a call's transcript (epoch ms). Aloware
-- sends transcripts only on accounts with transcription: a call ready with
-- its recording waits for one only when one came recently
-- (sources::aloware::transcript_mode).
CREATE TABLE transcripts_seen (
    source TEXT PRIMARY KEY,
    last_at INTEGER NOT NULL
);
