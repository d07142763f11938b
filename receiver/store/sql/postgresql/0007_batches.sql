-- Batches: sets of tasks that belong together, each finished by one batch.completed or
-- batch.expired event (stored as an event of the reserved source "batches").
CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,            -- open | completed | expired
    expected INTEGER,               -- its size, when declared
    closed INTEGER NOT NULL DEFAULT 0,  -- 1: the tasks it has are all of it
    deadline DOUBLE PRECISION,      -- open past this (Unix seconds): expired
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    event_id TEXT                   -- its batch.completed or batch.expired event
);
CREATE INDEX batches_due ON batches (state, deadline);
CREATE INDEX batches_listing ON batches (state, created_at, id);
CREATE INDEX batches_created ON batches (created_at, id);

-- The tasks of each batch; status is the task's first final status (completed or failed),
-- NULL while it has none.
CREATE TABLE batch_tasks (
    batch_id TEXT NOT NULL REFERENCES batches (id),
    source TEXT NOT NULL,
    task_id TEXT NOT NULL,
    status TEXT,
    event_id TEXT,                  -- the event of that status
    added_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (batch_id, source, task_id)
);
CREATE INDEX batch_tasks_task ON batch_tasks (task_id, source);
