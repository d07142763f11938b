-- Claims walk the due deliveries of a destination in order and stop at the limit, and count
-- the leased ones, without reading the whole backlog.
CREATE INDEX deliveries_queue ON deliveries (destination, next_attempt_at, event_id)
    WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_leased ON deliveries (destination, lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
