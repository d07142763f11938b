"""Batches of tasks: who belongs to which, each task's final status, and the one
``batch.completed`` or ``batch.expired`` event of each batch, written in the transaction that
makes it so (a callback, a reconciliation, a declaration, a close, the deadline sweep).

A batch completes once its size is known (its tasks once ``closed``, else ``expected``) and that
many of its tasks have a final status. Its event is an ordinary event of the reserved source
``batches`` (task id: the batch id), so the events' idempotency key allows one of each. On
PostgreSQL the batch row is locked (``FOR NO KEY UPDATE``, which tasks joining it by a foreign key
do not wait for) before completion is decided: of two
transactions finishing a batch's last two tasks, the second waits and sees the first's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from receiver.errors import Conflict
from receiver.events import Event
from receiver.ids import new_id
from receiver.states import BatchState, DeliveryState
from receiver.store import batch_events, kept_files, rows
from receiver.store.outbox import INSERT_DELIVERY, new_delivery
from receiver.store.records import (
    Batch,
    BatchDeclaration,
    BatchRule,
    NewEvent,
    Receipt,
    Route,
)
from receiver.store.tx import Tx, marks

#: The reserved source of batch events.
SOURCE = "batches"
#: The statuses of batch events.
STATUSES = (BatchState.COMPLETED.value, BatchState.EXPIRED.value)
#: A task's statuses that are final for its batch.
FINAL = ("completed", "failed")
_CHUNK = 500

BATCH_COLUMNS = """
    b.id, b.state, b.expected, b.closed, b.deadline, b.created_at, b.updated_at, b.finished_at,
    b.event_id,
    (SELECT COUNT(*) FROM batch_tasks t WHERE t.batch_id = b.id),
    (SELECT COUNT(*) FROM batch_tasks t WHERE t.batch_id = b.id AND t.status = 'completed'),
    (SELECT COUNT(*) FROM batch_tasks t WHERE t.batch_id = b.id AND t.status = 'failed')
"""
_NEW_BATCH = """
    INSERT INTO batches (id, state, expected, closed, deadline, created_at, updated_at)
    VALUES (?, 'open', ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
"""
# A task joins by a rule only an open batch whose size is not fixed by a close.
_JOIN = """
    INSERT INTO batch_tasks (batch_id, source, task_id, added_at)
    SELECT ?, ?, ?, ? WHERE EXISTS (
        SELECT 1 FROM batches WHERE id = ? AND state = 'open' AND closed = 0)
    ON CONFLICT (batch_id, source, task_id) DO NOTHING
"""
_ADD = """
    INSERT INTO batch_tasks (batch_id, source, task_id, added_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (batch_id, source, task_id) DO NOTHING
"""


def batch(row: Sequence[Any]) -> Batch:
    return Batch(
        id=row[0],
        state=row[1],
        expected=row[2],
        closed=bool(row[3]),
        deadline=row[4],
        created_at=row[5],
        updated_at=row[6],
        finished_at=row[7],
        event_id=row[8],
        tasks=row[9],
        completed=row[10],
        failed=row[11],
    )


async def join(tx: Tx, joins: Iterable[tuple[str, str, str, BatchRule]], now: float) -> set[str]:
    """Put tasks in the batches their source's rule names ((batch id, source, task id, rule)),
    creating each batch, open, with its first task; the batches that gained one."""
    joined: set[str] = set()
    for batch_id, source, task_id, rule in sorted(joins, key=lambda j: j[:3]):
        deadline = now + rule.deadline if rule.deadline is not None else None
        await tx.execute(_NEW_BATCH, (batch_id, rule.expected, 0, deadline, now, now))
        if await tx.execute(_JOIN, (batch_id, source, task_id, now, batch_id)):
            joined.add(batch_id)
    return joined


async def settle(tx: Tx, tasks: Collection[tuple[str, str]]) -> set[str]:
    """Give the batch tasks of these (source, task id) that have no final status yet the first
    final status stored for them; the batches that changed."""
    ids = sorted({task_id for _, task_id in tasks})
    waiting: list[tuple[str, str, str]] = []
    finals: dict[tuple[str, str], tuple[str, str]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        waiting += [
            (batch_id, source, task_id)
            for batch_id, source, task_id in await tx.fetch(
                "SELECT batch_id, source, task_id FROM batch_tasks"  # noqa: S608
                f" WHERE task_id IN ({marks(len(chunk))}) AND status IS NULL",
                chunk,
            )
            if (source, task_id) in tasks
        ]
    if not waiting:
        return set()
    needed = sorted({task_id for _, _, task_id in waiting})
    for start in range(0, len(needed), _CHUNK):
        chunk = needed[start : start + _CHUNK]
        for task_id, source, event_id, status in await tx.fetch(
            "SELECT task_id, source, id, status FROM events"  # noqa: S608
            f" WHERE task_id IN ({marks(len(chunk))}) AND status IN ('completed', 'failed')"
            " ORDER BY id",
            chunk,
        ):
            finals.setdefault((source, task_id), (event_id, status))
    changed: set[str] = set()
    for batch_id, source, task_id in sorted(waiting):
        final = finals.get((source, task_id))
        if final is None:
            continue
        event_id, status = final
        if await tx.execute(
            "UPDATE batch_tasks SET status = ?, event_id = ?"
            " WHERE batch_id = ? AND source = ? AND task_id = ? AND status IS NULL",
            (status, event_id, batch_id, source, task_id),
        ):
            changed.add(batch_id)
    return changed


async def check(tx: Tx, batch_ids: Iterable[str], now: float, route: Route | None) -> list[str]:
    """Complete those of these batches whose every task has a final status, storing each one's
    ``batch.completed`` event; the ids of the events stored."""
    stored = []
    for batch_id in sorted(set(batch_ids)):  # locked in key order: no waiting in a cycle
        found = await _locked(tx, batch_id)
        if found is None or found[0] != BatchState.OPEN:
            continue
        _, expected, closed = found
        [(count, final)] = await tx.fetch(
            "SELECT COUNT(*), COUNT(status) FROM batch_tasks WHERE batch_id = ?", (batch_id,)
        )
        size = count if closed else expected
        if size is not None and final >= size:
            event_id = await finish(tx, batch_id, BatchState.COMPLETED, now, route)
            if event_id is not None:
                stored.append(event_id)
    return stored


async def _locked(tx: Tx, batch_id: str) -> tuple[str, int | None, bool] | None:
    found = await tx.fetch(
        f"SELECT state, expected, closed FROM batches WHERE id = ?{tx.dialect.for_no_key_update}",  # noqa: S608
        (batch_id,),
    )
    if not found:
        return None
    state, expected, closed = found[0]
    return state, expected, bool(closed)


async def finish(
    tx: Tx, batch_id: str, state: BatchState, now: float, route: Route | None
) -> str | None:
    """Mark an open batch completed or expired and store its event, routed by ``route``; the
    event's id (None when the batch was not open: another transaction finished it)."""
    event_id = new_id("evt")
    if not await tx.execute(
        "UPDATE batches SET state = ?, finished_at = ?, updated_at = ?, event_id = ?"
        " WHERE id = ? AND state = 'open'",
        (state, now, now, event_id, batch_id),
    ):
        return None
    stored = await tx.fetch(  # none, unless rows were imported or edited by hand
        "SELECT id, status FROM events WHERE task_id = ? AND source = ?"
        " AND status IN ('completed', 'expired')",
        (batch_id, SOURCE),
    )
    if stored:
        await tx.execute(
            "UPDATE batches SET state = ?, event_id = ? WHERE id = ?",
            (stored[0][1], stored[0][0], batch_id),
        )
        return None
    [current] = await tx.fetch(
        f"SELECT {BATCH_COLUMNS} FROM batches b WHERE b.id = ?",  # noqa: S608
        (batch_id,),
    )
    payload = await batch_events.payload(tx, batch(current))
    body = orjson.dumps(payload)
    received_at = datetime.fromtimestamp(now, UTC)
    event = Event(
        id=event_id,
        source=SOURCE,
        kind="batch",
        type=f"batch.{state}",
        task_id=batch_id,
        task_type="batch",
        status=str(state),
        business_id=None,
        labels=(),
        result_urls=(),
        flagged=False,
        received_at=received_at,
        payload=payload,
        via="batch",
    )
    receipt = Receipt(
        id=new_id("rcv"),
        source=SOURCE,
        received_at=received_at,
        peer=None,
        client=None,
        headers=b"[]",
        body=body,
        body_sha256=hashlib.sha256(body).digest(),
        events=(),
        via="batch",
    )
    await tx.execute(rows.INSERT_RECEIPT, rows.receipt_row(receipt, [event_id], duplicate=False))
    await tx.execute(rows.INSERT_EVENT, rows.event_row(NewEvent(event), receipt.id))
    destinations = route(event) if route is not None else ()
    if destinations:
        # It waits for its tasks' files still being kept (the batch row is locked: see there).
        waits = await kept_files.tasks_waiting(tx, batch_id)
        waiting = DeliveryState.KEEPING if waits else DeliveryState.PENDING
        await tx.executemany(
            INSERT_DELIVERY,
            [
                new_delivery(event_id, name, SOURCE, batch_id, now, state=waiting)
                for name in destinations
            ],
        )
        await tx.notify()
    return event_id


async def declare(
    tx: Tx, now: float, declaration: BatchDeclaration, route: Route | None = None
) -> Batch:
    """Create a batch, or extend an open one: its tasks, its size, its deadline. Tasks already
    final count at once; the batch completes here if that makes it complete. Raises
    :class:`Conflict` for a finished batch, a closed one given new tasks, or another
    ``expected``."""
    d = declaration
    closed = d.closed if d.closed is not None else bool(d.tasks) and d.expected is None
    created = await tx.execute(_NEW_BATCH, (d.id, d.expected, int(closed), d.deadline, now, now))
    found = await _locked(tx, d.id)
    assert found is not None
    state, expected, was_closed = found
    if not created:
        if state != BatchState.OPEN:
            raise Conflict(f"batch {d.id} is {state}: it takes no more changes")
        if d.expected is not None and expected is not None and d.expected != expected:
            raise Conflict(f"batch {d.id} expects {expected} tasks, not {d.expected}")
        if was_closed and d.closed is False:
            raise Conflict(f"batch {d.id} is closed: it cannot be opened again")
        if was_closed and d.tasks:
            known = {
                (source, task_id)
                for source, task_id, *_ in await tx.fetch(
                    "SELECT source, task_id FROM batch_tasks WHERE batch_id = ?", (d.id,)
                )
            }
            if not set(d.tasks) <= known:
                raise Conflict(f"batch {d.id} is closed: it takes no new tasks")
        await tx.execute(
            "UPDATE batches SET expected = COALESCE(?, expected), deadline = COALESCE(?, deadline),"
            " closed = ?, updated_at = ? WHERE id = ?",
            (d.expected, d.deadline, int(was_closed or bool(d.closed)), now, d.id),
        )
    await tx.executemany(
        _ADD, [(d.id, source, task_id, now) for source, task_id in sorted(d.tasks)]
    )
    await settle(tx, set(d.tasks))
    await check(tx, [d.id], now, route)
    result = await get_batch(tx, d.id)
    assert result is not None
    return result


async def close(tx: Tx, now: float, batch_id: str, route: Route | None = None) -> Batch | None:
    """Fix an open batch's size to the tasks it has now (completing it if they are all final);
    None if there is no such batch. A finished batch is left as it is."""
    found = await _locked(tx, batch_id)
    if found is None:
        return None
    if found[0] == BatchState.OPEN:
        await tx.execute(
            "UPDATE batches SET closed = 1, updated_at = ? WHERE id = ?", (now, batch_id)
        )
        await check(tx, [batch_id], now, route)
    return await get_batch(tx, batch_id)


async def sweep(tx: Tx, now: float, route: Route | None = None, limit: int = 100) -> list[str]:
    """Settle open batches' tasks whose final status was stored without reaching them (a task
    declared while its final callback was being stored elsewhere), completing the batches that
    makes complete; then expire up to ``limit`` open batches past their deadline, each with its
    ``batch.expired`` event; and release batch events left waiting for files already kept (see
    :func:`kept_files.release_stranded`). The ids of the events stored."""
    stale = await tx.fetch(
        "SELECT t.source, t.task_id FROM batch_tasks t JOIN batches b ON b.id = t.batch_id"
        " WHERE b.state = 'open' AND t.status IS NULL AND EXISTS (SELECT 1 FROM events e"
        " WHERE e.task_id = t.task_id AND e.source = t.source"
        " AND e.status IN ('completed', 'failed')) LIMIT ?",
        (limit,),
    )
    stored = await check(tx, await settle(tx, {(s, t) for s, t in stale}), now, route)
    due = await tx.fetch(
        "SELECT id FROM batches WHERE state = 'open' AND deadline <= ?"  # noqa: S608
        f" ORDER BY deadline LIMIT ?{tx.dialect.skip_locked}",
        (now, limit),
    )
    for batch_id in sorted(str(row[0]) for row in due):
        found = await _locked(tx, batch_id)
        if found is not None and found[0] == BatchState.OPEN:
            event_id = await finish(tx, batch_id, BatchState.EXPIRED, now, route)
            if event_id is not None:
                stored.append(event_id)
    await kept_files.release_stranded(tx, now)
    return stored


async def get_batch(tx: Tx, batch_id: str) -> Batch | None:
    """One batch and its counts, or None."""
    found = await tx.fetch(
        f"SELECT {BATCH_COLUMNS} FROM batches b WHERE b.id = ?",  # noqa: S608
        (batch_id,),
    )
    return batch(found[0]) if found else None
