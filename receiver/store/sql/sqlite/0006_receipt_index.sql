-- Retention deletes a stored request once no event refers to it; without this index each such
-- check read the whole events table (PostgreSQL's schema has had it from the start).
CREATE INDEX events_receipt ON events (receipt_id);
