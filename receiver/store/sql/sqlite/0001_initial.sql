-- Everything received: callbacks (and later, answers of the providers' status APIs).
CREATE TABLE receipts (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    via TEXT NOT NULL,
    received_at TEXT NOT NULL,
    peer TEXT,
    client TEXT,
    headers TEXT NOT NULL,          -- JSON [[name, value], ...], secrets redacted
    body BLOB NOT NULL,
    body_sha256 BLOB NOT NULL,
    event_ids TEXT NOT NULL,        -- JSON array: the events it created or duplicated
    duplicate INTEGER NOT NULL      -- 1 when it created no event
);

-- Normalized events; the payload is the body of the receipt that created the event.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    type TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_type TEXT NOT NULL,
    status TEXT NOT NULL,
    business_id TEXT,
    labels TEXT NOT NULL,           -- JSON array
    result_urls TEXT NOT NULL,      -- JSON array
    flagged INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    via TEXT NOT NULL,
    receipt_id TEXT NOT NULL REFERENCES receipts (id),
    duplicates INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- The idempotency key: a task reaches each status once.
CREATE UNIQUE INDEX events_task_status ON events (task_id, source, status);
CREATE INDEX events_source ON events (source, id);
CREATE INDEX events_status ON events (status, id);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
