-- Aloware sends a call's transcript about 40 s after its recording (and
-- not at all on accounts without transcription), so a call ready with its
-- recording waits for it only until this time (epoch ms); then the sweep
-- sends it with its recording alone. NULL: no wait started; 0: the wait is
-- over (the sweep re-decided the call, later deliveries do not wait again).
ALTER TABLE held_calls ADD COLUMN transcript_due_at INTEGER;
