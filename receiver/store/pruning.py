"""Retention: deleting what is older than the retention period and has nothing left to do."""

from __future__ import annotations

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
_PRUNE_COUNTS = f"""
    SELECT
        (SELECT COUNT(*) FROM ({_PRUNABLE_EVENTS}) AS prunable),
        (SELECT COUNT(*) FROM receipts r WHERE r.received_at < ? AND NOT EXISTS (
            SELECT 1 FROM events e WHERE e.receipt_id = r.id AND e.id NOT IN ({_PRUNABLE_EVENTS})
        )),
        (SELECT COUNT(*) FROM deliveries WHERE event_id IN ({_PRUNABLE_EVENTS})),
        (SELECT COUNT(*) FROM attempts WHERE delivery_id IN (
            SELECT id FROM deliveries WHERE event_id IN ({_PRUNABLE_EVENTS})))
"""  # noqa: S608


async def count(tx: Tx, cutoff: str) -> Pruned:
    """What pruning everything before ``cutoff`` would delete."""
    [found] = await tx.fetch(_PRUNE_COUNTS, [cutoff] * 5)
    return Pruned(*found)


async def prune_batch(tx: Tx, cutoff: str, batch: int) -> Pruned:
    """Delete up to ``batch`` old events with nothing left to deliver, then orphaned receipts."""
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
    return Pruned(events, receipts, deliveries, attempts)
