-- Each destination's latest failed attempt, kept as it happens: finding it among the attempts
-- read every delivery the destination ever had, on each metrics scrape.
ALTER TABLE destinations ADD COLUMN last_error TEXT;
UPDATE destinations SET last_error = (
    SELECT COALESCE(a.error, 'HTTP ' || a.status_code) FROM attempts a
    JOIN deliveries d ON d.id = a.delivery_id
    WHERE d.destination = destinations.name AND a.ok = 0 ORDER BY a.id DESC LIMIT 1
);
