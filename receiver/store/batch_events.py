"""What a batch's event says: the batch, its counts and its tasks with their results, as
stored when the batch completes or expires (:func:`receiver.store.batches.finish`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from receiver.events import format_timestamp
from receiver.states import BatchState
from receiver.store.records import Batch, BatchTask
from receiver.store.tx import Tx

#: The most tasks a batch event lists, and the most outstanding ones an expired batch's event
#: names: listing every task of a batch of 100,000 would make a body of tens of megabytes, more
#: than many receivers and brokers take. The rest are in ``GET /api/batches/{id}``.
LISTED = 1000


async def payload(tx: Tx, found: Batch) -> dict[str, Any]:
    """What a batch event says: the batch, its counts, its tasks (the first :data:`LISTED`) with
    their final statuses and results; an expired batch's outstanding tasks too. A list cut short
    says how many it left out (``tasks_omitted``, ``outstanding_omitted``)."""
    listed = await tasks_of(tx, found.id, limit=LISTED)
    said: dict[str, Any] = {
        "batch_id": found.id,
        "state": found.state,
        "counts": {
            "completed": found.completed,
            "failed": found.failed,
            "total": found.tasks,
        },
        "expected": found.expected,
        "created_at": format_timestamp(found.created_at),
        "deadline": format_timestamp(found.deadline) if found.deadline is not None else None,
        "tasks": task_entries(listed),
    }
    if found.tasks > len(listed):
        said["tasks_omitted"] = found.tasks - len(listed)
    if found.state == BatchState.EXPIRED:
        outstanding = await tx.fetch(
            "SELECT source, task_id FROM batch_tasks WHERE batch_id = ? AND status IS NULL"
            " ORDER BY added_at, source, task_id LIMIT ?",
            (found.id, LISTED),
        )
        said["outstanding"] = [
            {"source": source, "task_id": task_id} for source, task_id in outstanding
        ]
        unfinished = found.tasks - found.completed - found.failed
        if unfinished > len(outstanding):
            said["outstanding_omitted"] = unfinished - len(outstanding)
        if found.expected is not None and found.expected > found.tasks:
            said["missing"] = found.expected - found.tasks  # never seen at all
    return said


def task_entries(members: Sequence[BatchTask]) -> list[dict[str, Any]]:
    """Each task of a batch as its event lists it (the place to add more of a task's results,
    such as the stable URLs of kept files)."""
    return [
        {
            "source": task.source,
            "task_id": task.task_id,
            "status": task.status,
            "event_id": task.event_id,
            "result_urls": list(task.result_urls),
        }
        for task in members
    ]


async def tasks_of(tx: Tx, batch_id: str, limit: int | None = None) -> list[BatchTask]:
    """A batch's tasks (the first ``limit``), in the order they joined, with the result URLs of
    their final event."""
    query = (
        "SELECT t.source, t.task_id, t.status, t.event_id, t.added_at, e.result_urls"
        " FROM batch_tasks t LEFT JOIN events e ON e.id = t.event_id"
        " WHERE t.batch_id = ? ORDER BY t.added_at, t.source, t.task_id"
    )
    parameters: tuple[Any, ...] = (batch_id,)
    if limit is not None:
        query, parameters = f"{query} LIMIT ?", (batch_id, limit)
    return [
        BatchTask(
            source=source,
            task_id=task_id,
            status=status,
            event_id=event_id,
            added_at=added_at,
            result_urls=tuple(orjson.loads(urls)) if urls else (),
        )
        for source, task_id, status, event_id, added_at, urls in await tx.fetch(query, parameters)
    ]
