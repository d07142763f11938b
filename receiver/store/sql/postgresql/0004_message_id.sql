-- The webhook-id of a delivery replayed as a new message (`photohook replay --new-id`); NULL:
-- the event id, which receivers deduplicate on.
ALTER TABLE deliveries ADD COLUMN message_id TEXT;
