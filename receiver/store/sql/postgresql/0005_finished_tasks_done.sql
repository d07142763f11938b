-- A task reopened by a progress callback that came after its final one (fixed in the store) may
-- have ended lost, or still be tracked, although its final event is stored: it is done.
UPDATE tasks SET state = 'done', lease_owner = NULL, lease_expires_at = NULL
WHERE state IN ('tracked', 'lost')
  AND EXISTS (
    SELECT 1 FROM events e
    WHERE e.source = tasks.source AND e.task_id = tasks.task_id
      AND e.status IN ('completed', 'failed')
  );
