-- Tasks whose result photohook waits for, to ask the provider if no callback brings it.
CREATE TABLE tasks (
    source TEXT NOT NULL,
    task_id TEXT NOT NULL,
    business_id TEXT,
    state TEXT NOT NULL,            -- tracked | confirming | done | lost | unconfirmed
    event_id TEXT,                  -- confirming: the terminal event waiting to be confirmed
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,     -- the last callback, or the registration
    expires_at REAL NOT NULL,       -- tracked past this: lost
    next_check_at REAL NOT NULL,
    checks INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at REAL,
    last_error TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (source, task_id)
) WITHOUT ROWID;

CREATE INDEX tasks_due ON tasks (state, next_check_at);
