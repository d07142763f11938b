"""Retention: deleting what is older than the retention period and has nothing left to do."""

from __future__ import annotations

from datetime import datetime

from ..events import format_time
from .records import Pruned
from .tx import Tx, marks

_PRUNABLE_EVENTS = """
    SELECT e.id FROM events e WHERE e.received_at < ? AND NOT EXISTS (
        SELECT 1 FROM deliveries d
        WHERE d.event_id = e.id AND d.state IN ('pending', 'retrying', 'held', 'confirming')
    )
"""
_PRUNABLE_RECEIPTS = """
    SELECT r.id FROM receipts r WHERE r.received_at < ?
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.receipt_id = r.id)
"""
# Tracked tasks that reached a final state and have not changed since the cutoff.
_FINISHED_TASKS = """
    SELECT source, task_id FROM tasks
    WHERE state IN ('done', 'lost', 'unconfirmed') AND updated_at < ?
"""
_PRUNE_COUNTS = f"""
    SELECT
        (SELECT COUNT(*) FROM ({_PRUNABLE_EVENTS}) AS prunable),
        (SELECT COUNT(*) FROM receipts r WHERE r.received_at < ? AND NOT EXISTS (
            SELECT 1 FROM events e WHERE e.receipt_id = r.id AND e.id NOT IN ({_PRUNABLE_EVENTS})
        )),
        (SELECT COUNT(*) FROM deliveries WHERE event_id IN ({_PRUNABLE_EVENTS})),
        (SELECT COUNT(*) FROM attempts WHERE delivery_id IN (
            SELECT id FROM deliveries WHERE event_id IN ({_PRUNABLE_EVENTS}))),
        (SELECT COUNT(*) FROM ({_FINISHED_TASKS}) AS finished)
"""  # noqa: S608


async def count(tx: Tx, cutoff: datetime) -> Pruned:
    """What pruning everything before ``cutoff`` would delete."""
    [found] = await tx.fetch(_PRUNE_COUNTS, [format_time(cutoff)] * 5 + [cutoff.timestamp()])
    return Pruned(*found)


async def prune_batch(tx: Tx, cutoff_time: datetime, batch: int) -> Pruned:
    """Delete up to ``batch`` old events with nothing left to deliver, then orphaned receipts,
    then tasks that finished before the cutoff."""
    cutoff = format_time(cutoff_time)
    ids = [
        event_id for (event_id,) in await tx.fetch(f"{_PRUNABLE_EVENTS} LIMIT ?", (cutoff, batch))
    ]
    attempts = deliveries = events = 0
    if ids:
        some = marks(len(ids))
        attempts = await tx.execute(
            "DELETE FROM attempts WHERE delivery_id IN"  # noqa: S608
            f" (SELECT id FROM deliveries WHERE event_id IN ({some}))",
            ids,
        )
        deliveries = await tx.execute(f"DELETE FROM deliveries WHERE event_id IN ({some})", ids)  # noqa: S608
        events = await tx.execute(f"DELETE FROM events WHERE id IN ({some})", ids)  # noqa: S608
    receipts = await tx.execute(
        f"DELETE FROM receipts WHERE id IN ({_PRUNABLE_RECEIPTS} LIMIT ?)",  # noqa: S608
        (cutoff, batch),
    )
    tasks = await tx.execute(
        f"DELETE FROM tasks WHERE (source, task_id) IN ({_FINISHED_TASKS} LIMIT ?)",  # noqa: S608
        (cutoff_time.timestamp(), batch),
    )
    return Pruned(events, receipts, deliveries, attempts, tasks)
