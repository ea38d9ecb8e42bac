-- The trace of the job that wrote an event, published with it as the
-- `traceparent` header so the broadcaster's delivery joins the job's trace.
ALTER TABLE outbox_events ADD COLUMN traceparent varchar(55);
