-- Receipts kept beside an existing event (a duplicate whose body differed), for event details.
CREATE INDEX receipts_duplicates ON receipts (duplicate) WHERE duplicate = 1;
-- Retention prunes by age.
CREATE INDEX receipts_received ON receipts (received_at);
CREATE INDEX events_received ON events (received_at);
