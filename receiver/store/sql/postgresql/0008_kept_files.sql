-- Result files kept in the result store ([results], keep_results): one row per file of an event,
-- leased to one keeper at a time. No foreign key: a row outlives its pruned event as 'pruned'
-- until its stored copy is deleted.
CREATE TABLE kept_files (
    event_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    url TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    storage_key TEXT,
    size BIGINT,
    content_type TEXT,
    sha256 TEXT,
    last_error TEXT,
    kept_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (event_id, position)
);

CREATE INDEX kept_files_due ON kept_files (next_attempt_at) WHERE state IN ('waiting', 'pruned');
