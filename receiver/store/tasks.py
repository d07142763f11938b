"""Tracked tasks: the reconciler's queue of tasks to ask the provider about."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from receiver.states import DeliveryState, TaskState
from receiver.store import kept_files, rows
from receiver.store.records import Task, Tracking
from receiver.store.tx import Tx, marks


async def track(
    tx: Tx, source: str, task_id: str, business_id: str | None, tracking: Tracking, now: float
) -> Task:
    """Start tracking a task (done at once if a terminal event is already stored)."""
    finished = await tx.fetch(
        "SELECT 1 FROM events WHERE source = ? AND task_id = ?"
        " AND status IN ('completed', 'failed')",
        (source, task_id),
    )
    await tx.execute(
        "INSERT INTO tasks (source, task_id, business_id, state, created_at, last_seen_at,"
        " expires_at, next_check_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (source, task_id) DO NOTHING",
        (
            source,
            task_id,
            business_id,
            TaskState.DONE if finished else TaskState.TRACKED,
            now,
            now,
            now + tracking.lasting,
            now + tracking.after,
            now,
        ),
    )
    [row] = await tx.fetch(
        f"SELECT {rows.TASK_COLUMNS} FROM tasks WHERE source = ? AND task_id = ?",  # noqa: S608
        (source, task_id),
    )
    return rows.task(row)


async def claim(
    tx: Tx, sources: Collection[str], worker_id: str, limit: int, lease: float, now: float
) -> tuple[list[Task], float | None]:
    """Lease tasks of ``sources`` whose check is due; and when the next one falls due."""
    # Through tasks_due: the primary key would read every task of the source, finished or not.
    due = (
        f"state IN ('tracked', 'confirming')"
        f" AND {tx.dialect.unindexed}source IN ({marks(len(sources))})"
        " AND (lease_expires_at IS NULL OR lease_expires_at <= ?)"
    )
    tasks = [
        rows.task(row)
        for row in await tx.fetch(
            f"SELECT {rows.TASK_COLUMNS} FROM tasks WHERE {due}"  # noqa: S608
            f" AND next_check_at <= ? ORDER BY next_check_at LIMIT ?{tx.dialect.skip_locked}",
            (*sources, now, now, limit),
        )
    ]
    await tx.executemany(
        "UPDATE tasks SET lease_owner = ?, lease_expires_at = ? WHERE source = ? AND task_id = ?",
        [(worker_id, now + lease, t.source, t.task_id) for t in tasks],
    )
    [(next_due,)] = await tx.fetch(
        f"SELECT MIN(next_check_at) FROM tasks WHERE {due}",  # noqa: S608
        (*sources, now + lease),
    )
    return tasks, next_due


async def finish(
    tx: Tx,
    now: float,
    task: Task,
    worker_id: str,
    *,
    state: str,
    next_check_at: float | None = None,
    error: str | None = None,
    confirmed: bool | None = None,
) -> None:
    """Record a check of a leased task; ``confirmed`` releases (True) or refuses (False) the
    deliveries of its confirming event."""
    # The state changes only if nothing else changed it meanwhile (a callback that completed
    # the task while it was being checked must not be undone). A tracked task whose final
    # event is stored is done whatever the check found: its callbacks came out of order, into
    # an older photohook or into two processes at once, and it must not end lost.
    changed = await tx.execute(
        "UPDATE tasks SET state = CASE WHEN state <> ? THEN state"
        " WHEN state = 'tracked' AND EXISTS (SELECT 1 FROM events e"
        " WHERE e.task_id = tasks.task_id AND e.source = tasks.source"
        " AND e.status IN ('completed', 'failed')) THEN 'done' ELSE ? END,"
        " next_check_at = COALESCE(?, next_check_at), checks = checks + 1,"
        " last_error = ?, updated_at = ?, lease_owner = NULL, lease_expires_at = NULL"
        " WHERE source = ? AND task_id = ? AND lease_owner = ?",
        (task.state, state, next_check_at, error, now, task.source, task.task_id, worker_id),
    )
    if confirmed is not None and changed and task.event_id is not None:
        released = DeliveryState.PENDING
        if confirmed and await kept_files.unfinished(tx, task.event_id):
            released = DeliveryState.KEEPING  # they go out once its files are kept
        await tx.execute(
            "UPDATE deliveries SET state = ?, next_attempt_at = ?, updated_at = ?,"
            " last_error = ? WHERE event_id = ? AND state = 'confirming'",
            (
                released if confirmed else DeliveryState.UNCONFIRMED,
                now,
                now,
                None if confirmed else error,
                task.event_id,
            ),
        )
        if confirmed:
            await tx.notify()


async def list_tasks(tx: Tx, state: str | None = None, limit: int = 100) -> list[Task]:
    where, parameters = ("WHERE state = ?", [state]) if state else ("", [])
    found = await tx.fetch(
        f"SELECT {rows.TASK_COLUMNS} FROM tasks {where} ORDER BY updated_at DESC LIMIT ?",  # noqa: S608
        [*parameters, limit],
    )
    return [rows.task(row) for row in found]


#: The error of each source's most recently updated task that has one: one pass over the tasks
#: (a subquery per task would read a source's tasks once for each of them).
LAST_ERRORS = """
    SELECT source, last_error FROM (
        SELECT source, last_error,
            ROW_NUMBER() OVER (PARTITION BY source ORDER BY updated_at DESC, task_id DESC) AS n
        FROM tasks WHERE last_error IS NOT NULL
    ) AS latest WHERE n = 1
"""


async def summary(tx: Tx) -> dict[str, dict[str, Any]]:
    """Per source: ``{"counts": {state: n}, "last_error": ...}``."""
    found: dict[str, dict[str, Any]] = {}
    for source, state, count in await tx.fetch(
        "SELECT source, state, COUNT(*) FROM tasks GROUP BY source, state"
    ):
        found.setdefault(source, {"counts": {}, "last_error": None})["counts"][state] = count
    for source, error in await tx.fetch(LAST_ERRORS):
        found.setdefault(source, {"counts": {}, "last_error": None})["last_error"] = error
    return found
