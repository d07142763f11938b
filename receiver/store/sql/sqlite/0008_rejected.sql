-- Callbacks that passed authentication and were refused for their content (400, 413, 415, 422),
-- kept so that none is lost when a provider changes what it sends: they can be retried.
CREATE TABLE rejected (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    received_at TEXT NOT NULL,
    peer TEXT,
    client TEXT,
    headers TEXT NOT NULL,          -- JSON [[name, value], ...], secrets redacted
    body BLOB,                      -- NULL when it was not read whole (413)
    status INTEGER NOT NULL,        -- the answer given
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    field TEXT,
    retries INTEGER NOT NULL DEFAULT 0,
    retried_at TEXT,
    outcome TEXT,                   -- of the last retry: accepted, duplicate or rejected
    retry_error TEXT,               -- JSON {status, code, message, field} when still rejected
    event_ids TEXT                  -- JSON array, once accepted
);
CREATE INDEX rejected_source ON rejected (source, id);
CREATE INDEX rejected_received ON rejected (received_at);
