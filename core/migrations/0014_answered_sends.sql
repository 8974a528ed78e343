-- outbox.answered: the 2xx status Kendo answered the send in flight with,
-- stored before the plugin reads the answer. Kendo holds a call it
-- answered 2xx; if the instance dies reading the answer (a plugin trap
-- takes a Spin instance down), recovery records the call sent instead of
-- sending it again (a duplicate in Kendo).
ALTER TABLE outbox ADD COLUMN answered INTEGER;
