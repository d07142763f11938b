-- The W3C traceparent of a traced callback's span (OpenTelemetry), so that the spans of its
-- delivery attempts, in whichever process, join its trace; NULL when it was not traced.
ALTER TABLE receipts ADD COLUMN trace_context TEXT;
