-- Result files kept in the result store ([results], keep_results): one row per file of an event,
-- leased to one keeper at a time. No foreign key: a row outlives its pruned event as 'pruned'
-- until its stored copy is deleted.
CREATE TABLE kept_files (
    event_id TEXT NOT NULL,
    position INTEGER NOT NULL,      -- the file's index in the event's result_urls
    url TEXT NOT NULL,              -- the provider's URL
    state TEXT NOT NULL,            -- waiting | kept | missing | pruned
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,  -- Unix seconds
    lease_owner TEXT,
    lease_expires_at REAL,
    storage_key TEXT,               -- where the copy is, in the result store
    size INTEGER,
    content_type TEXT,
    sha256 TEXT,
    last_error TEXT,                -- never a URL's query string (a presigned URL's signature)
    kept_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (event_id, position)
) WITHOUT ROWID;

CREATE INDEX kept_files_due ON kept_files (next_attempt_at) WHERE state IN ('waiting', 'pruned');
