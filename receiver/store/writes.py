"""Storing received callbacks: a batch of receipts, their events, deliveries and task tracking
written in one transaction, as planned by :mod:`.batch`."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from receiver.store import batches, kept_files, rows
from receiver.store.outbox import INSERT_DELIVERY
from receiver.store.plan import Key, TaskChange, plan
from receiver.store.records import BatchRule, Receipt, Stored
from receiver.store.tx import Tx, marks

_PARAMETERS_PER_QUERY = 500

# A tracked task has no event waiting (NULL). A callback that is not final tracks its task
# only while no final event of it is stored: callbacks come out of order, and a late one must
# not reopen a finished task (which has no row when its first event was the final one).
_TASK_SEEN = """
    INSERT INTO tasks (source, task_id, business_id, state, event_id, created_at, last_seen_at,
        expires_at, next_check_at, updated_at)
    SELECT ?, ?, ?, 'tracked', ?, ?, ?, ?, ?, ?
    WHERE NOT EXISTS (
        SELECT 1 FROM events e WHERE e.task_id = ? AND e.source = ?
        AND e.status IN ('completed', 'failed')
    )
    ON CONFLICT (source, task_id) DO UPDATE SET last_seen_at = excluded.last_seen_at,
        next_check_at = excluded.next_check_at, updated_at = excluded.updated_at
    WHERE tasks.state = 'tracked'
"""
_TASK_CONFIRMING = """
    INSERT INTO tasks (source, task_id, business_id, state, event_id, created_at, last_seen_at,
        expires_at, next_check_at, updated_at)
    VALUES (?, ?, ?, 'confirming', ?, ?, ?, ?, ?, ?)
    ON CONFLICT (source, task_id) DO UPDATE SET state = 'confirming', event_id = excluded.event_id,
        last_seen_at = excluded.last_seen_at, next_check_at = excluded.next_check_at,
        checks = 0, last_error = NULL, updated_at = excluded.updated_at
"""
_TASK_DONE = """
    UPDATE tasks SET state = 'done', updated_at = ?
    WHERE source = ? AND task_id = ? AND state IN ('tracked', 'lost')
"""


async def write_batch(tx: Tx, receipts: Sequence[Receipt], now: float) -> list[Stored]:
    """Store the receipts; what each one did."""
    task_ids = {new.event.task_id for receipt in receipts for new in receipt.events}
    known, ranks = await _existing(tx, task_ids)
    batch = plan(receipts, known, ranks, now)
    if batch.receipts:
        await tx.executemany(rows.INSERT_RECEIPT, batch.receipts)
    if batch.events:
        await tx.executemany(rows.INSERT_EVENT, batch.events)
    if batch.deliveries:
        await tx.executemany(INSERT_DELIVERY, batch.deliveries)
    if batch.files:
        await tx.executemany(kept_files.INSERT_KEPT_FILE, batch.files)
    if any(result.deliveries or result.files for result in batch.results):
        await tx.notify()
    # Rows are changed in key order, so that concurrent batches never wait for each other in a
    # cycle; the sorts are stable, so one task's changes keep their order.
    for change in sorted(batch.tasks, key=lambda change: (change.source, change.task_id)):
        await _apply_task_change(tx, change, now)
    if batch.duplicates:
        await tx.executemany(
            "UPDATE events SET duplicates = duplicates + 1 WHERE id = ?", sorted(batch.duplicates)
        )
    if batch.joins or batch.finals:
        finished = await _settle_batches(tx, receipts, batch.joins, batch.finals, now)
        if finished:  # said by each new event's receipt, so that its process wakes its worker
            return [
                msgspec.structs.replace(result, batch_events=finished)
                if result.new_event_ids
                else result
                for result in batch.results
            ]
    return batch.results


async def _settle_batches(
    tx: Tx,
    receipts: Sequence[Receipt],
    joins: list[tuple[str, str, str, BatchRule]],
    finals: set[tuple[str, str]],
    now: float,
) -> int:
    """Put the tasks in the batches their rules name, record their final statuses, and complete
    the batches that are complete now; how many batch events that stored. Only a new final
    status completes a batch (a task that joins without one only makes it bigger), so only the
    batches that gained one are locked."""
    await batches.join(tx, joins, now)
    tasks = finals | {(source, task_id) for _, source, task_id, _ in joins}
    changed = await batches.settle(tx, tasks)
    if not changed:
        return 0
    route = next((receipt.route for receipt in receipts if receipt.route is not None), None)
    return len(await batches.check(tx, changed, now, route))


async def _existing(
    tx: Tx, task_ids: set[str]
) -> tuple[dict[Key, tuple[str, bytes]], dict[tuple[str, str], int]]:
    """The stored events of these tasks: key -> (event id, body hash of its receipt); and the
    highest status rank each task has reached."""
    found: dict[Key, tuple[str, bytes]] = {}
    ranks: dict[tuple[str, str], int] = {}
    ids = sorted(task_ids)
    for start in range(0, len(ids), _PARAMETERS_PER_QUERY):
        chunk = ids[start : start + _PARAMETERS_PER_QUERY]
        for task_id, source, status, event_id, body_sha256, rank in await tx.fetch(
            "SELECT e.task_id, e.source, e.status, e.id, r.body_sha256, e.status_rank"  # noqa: S608
            " FROM events e JOIN receipts r ON r.id = e.receipt_id"
            f" WHERE e.task_id IN ({marks(len(chunk))})",
            chunk,
        ):
            found[(task_id, source, status)] = (event_id, bytes(body_sha256))
            ranks[(task_id, source)] = max(rank, ranks.get((task_id, source), 0))
    return found, ranks


async def _apply_task_change(tx: Tx, change: TaskChange, now: float) -> None:
    if change.kind == "done":
        await tx.execute(_TASK_DONE, (now, change.source, change.task_id))
        return
    seen = change.kind == "seen"
    row = (
        change.source,
        change.task_id,
        change.business_id,
        None if seen else change.event_id,
        now,
        now,
        change.expires_at,
        change.next_check_at,
        now,
    )
    if seen:
        await tx.execute(_TASK_SEEN, (*row, change.task_id, change.source))
    else:
        await tx.execute(_TASK_CONFIRMING, row)
