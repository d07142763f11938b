-- How far a task has got: a status of a lower rank arriving later is stored, not delivered.
ALTER TABLE events ADD COLUMN status_rank INTEGER NOT NULL DEFAULT 0;
UPDATE events SET status_rank = CASE
    WHEN status IN ('completed', 'failed') THEN (CASE kind WHEN 'fotor' THEN 1 ELSE 2 END)
    WHEN status = 'processing' THEN 1
    ELSE 0
END;

CREATE TABLE destinations (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,            -- active | paused | disabled
    reason TEXT,
    updated_at REAL NOT NULL
);

-- The transactional outbox: created in the transaction that stores the event.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES events (id),
    destination TEXT NOT NULL,
    source TEXT NOT NULL,
    task_id TEXT NOT NULL,
    state TEXT NOT NULL,            -- pending | retrying | delivered | dead | held | skipped
    attempts INTEGER NOT NULL DEFAULT 0,
    tries INTEGER NOT NULL DEFAULT 0,   -- attempts since it was last queued: the schedule's position
    next_attempt_at REAL NOT NULL,  -- Unix seconds
    lease_owner TEXT,
    lease_expires_at REAL,
    last_status INTEGER,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;

CREATE INDEX deliveries_due ON deliveries (destination, state, next_attempt_at);
CREATE INDEX deliveries_task ON deliveries (destination, task_id, source, event_id);
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_state ON deliveries (state, id);

CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    number INTEGER NOT NULL,
    started_at REAL NOT NULL,
    duration_ms REAL NOT NULL,
    ok INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    response_headers TEXT,          -- JSON [[name, value], ...]
    response_body BLOB              -- the first 2 KiB
);

CREATE INDEX attempts_delivery ON attempts (delivery_id, number);
CREATE INDEX attempts_started ON attempts (started_at);
