"""Retention: deleting what is older than the retention period and has nothing left to do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from receiver.events import format_time
from receiver.store.records import Pruned
from receiver.store.tx import Tx, marks

# An event's deliveries that are not finished, or its result files still waiting to be kept: it
# is kept with them.
_UNFINISHED = """
    SELECT 1 FROM deliveries d
    WHERE d.event_id = e.id AND d.state IN ('pending', 'retrying', 'held', 'confirming', 'keeping')
    UNION ALL SELECT 1 FROM kept_files k WHERE k.event_id = e.id AND k.state = 'waiting'
"""
_PRUNABLE_EVENTS = f"""
    SELECT e.id FROM events e WHERE e.received_at < ? AND NOT EXISTS ({_UNFINISHED})
"""  # noqa: S608
# Tracked tasks that reached a final state and have not changed since the cutoff.
_FINISHED_TASKS = """
    SELECT source, task_id FROM tasks
    WHERE state IN ('done', 'lost', 'unconfirmed') AND updated_at < ?
"""
# Finished batches whose event is pruned (or, counting, would be).
_PRUNABLE_BATCHES = f"""
    SELECT b.id FROM batches b WHERE b.state <> 'open' AND b.finished_at < ?
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = b.event_id
        AND (e.received_at >= ? OR EXISTS ({_UNFINISHED})))
"""  # noqa: S608
_PRUNE_COUNTS = f"""
    SELECT
        (SELECT COUNT(*) FROM ({_PRUNABLE_EVENTS}) AS prunable),
        (SELECT COUNT(*) FROM receipts r WHERE r.received_at < ? AND NOT EXISTS (
            SELECT 1 FROM events e WHERE e.receipt_id = r.id AND e.id NOT IN ({_PRUNABLE_EVENTS})
        )),
        (SELECT COUNT(*) FROM deliveries WHERE event_id IN ({_PRUNABLE_EVENTS})),
        (SELECT COUNT(*) FROM attempts WHERE delivery_id IN (
            SELECT id FROM deliveries WHERE event_id IN ({_PRUNABLE_EVENTS}))),
        (SELECT COUNT(*) FROM ({_FINISHED_TASKS}) AS finished),
        (SELECT COUNT(*) FROM rejected WHERE received_at < ?),
        (SELECT COUNT(*) FROM ({_PRUNABLE_BATCHES}) AS finished_batches)
"""  # noqa: S608
# Kept rejected requests go at the cutoff, whatever became of them: an accepted one's events
# are kept on their own terms.
_DELETE_REJECTED = """
    DELETE FROM rejected WHERE id IN (
        SELECT id FROM rejected WHERE received_at < ? ORDER BY received_at LIMIT ?)
"""


async def count(tx: Tx, cutoff: datetime) -> Pruned:
    """What pruning everything before ``cutoff`` would delete."""
    text = format_time(cutoff)
    seconds = cutoff.timestamp()
    [found] = await tx.fetch(_PRUNE_COUNTS, [text] * 5 + [seconds, text, seconds, text])
    events, receipts, deliveries, attempts, tasks, rejected, batches = found
    return Pruned(events, receipts, deliveries, attempts, tasks, rejected, batches=batches)


@dataclass(frozen=True, slots=True)
class Position:
    """How far one pruning run has looked (a ``received_at``), so that its next batch starts
    there rather than again past everything it keeps (events still being delivered, say). A
    request is orphaned when its events are pruned, and they share its ``received_at``: the
    requests' position is held back to the events', so none orphaned later in the run is passed
    over."""

    events: str = ""
    receipts: str = ""


_BATCH_EVENTS = f"""
    SELECT e.id, e.received_at FROM events e WHERE e.received_at >= ? AND e.received_at < ?
    AND NOT EXISTS ({_UNFINISHED}) ORDER BY e.received_at LIMIT ?
"""  # noqa: S608
_BATCH_RECEIPTS = """
    SELECT r.id, r.received_at FROM receipts r WHERE r.received_at >= ? AND r.received_at < ?
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.receipt_id = r.id)
    ORDER BY r.received_at LIMIT ?
"""


async def prune_batch(
    tx: Tx, cutoff_time: datetime, batch: int, since: Position = Position()
) -> tuple[Pruned, Position]:
    """Delete up to ``batch`` old events with nothing left to deliver, then orphaned receipts,
    then tasks that finished before the cutoff, then rejected requests received before it; and
    where the run's next batch starts."""
    cutoff = format_time(cutoff_time)
    found = await tx.fetch(_BATCH_EVENTS, (since.events, cutoff, batch))
    ids = [event_id for event_id, _ in found]
    # Every event before the last one found has been looked at; once fewer than a batch are
    # found, every event before the cutoff has.
    events_from = str(found[-1][1]) if len(found) == batch else cutoff
    attempts = deliveries = events = files = 0
    if ids:
        some = marks(len(ids))
        attempts = await tx.execute(
            "DELETE FROM attempts WHERE delivery_id IN"  # noqa: S608
            f" (SELECT id FROM deliveries WHERE event_id IN ({some}))",
            ids,
        )
        deliveries = await tx.execute(f"DELETE FROM deliveries WHERE event_id IN ({some})", ids)  # noqa: S608
        events = await tx.execute(f"DELETE FROM events WHERE id IN ({some})", ids)  # noqa: S608
        # Files never stored go with their event; stored copies are deleted by a keeper, which
        # then deletes their rows.
        await tx.execute(
            f"DELETE FROM kept_files WHERE event_id IN ({some}) AND storage_key IS NULL",  # noqa: S608
            ids,
        )
        files = await tx.execute(
            "UPDATE kept_files SET state = 'pruned', lease_owner = NULL,"  # noqa: S608
            f" lease_expires_at = NULL WHERE event_id IN ({some}) AND state != 'pruned'",
            ids,
        )
    orphans = await tx.fetch(_BATCH_RECEIPTS, (since.receipts, cutoff, batch))
    receipts = 0
    if orphans:
        receipts = await tx.execute(
            f"DELETE FROM receipts WHERE id IN ({marks(len(orphans))})",  # noqa: S608
            [receipt_id for receipt_id, _ in orphans],
        )
    receipts_from = str(orphans[-1][1]) if len(orphans) == batch else cutoff
    tasks = await tx.execute(
        f"DELETE FROM tasks WHERE (source, task_id) IN ({_FINISHED_TASKS} LIMIT ?)",  # noqa: S608
        (cutoff_time.timestamp(), batch),
    )
    rejected = await tx.execute(_DELETE_REJECTED, (cutoff, batch))
    batches = await _prune_batches(tx, cutoff_time, batch)
    position = Position(events_from, min(receipts_from, events_from))
    pruned = Pruned(events, receipts, deliveries, attempts, tasks, rejected, files, batches)
    return pruned, position


async def _prune_batches(tx: Tx, cutoff: datetime, batch: int) -> int:
    """Delete up to ``batch`` finished batches whose event is gone, with their tasks."""
    ids = [
        row[0]
        for row in await tx.fetch(
            f"{_PRUNABLE_BATCHES} LIMIT ?", (cutoff.timestamp(), format_time(cutoff), batch)
        )
    ]
    if not ids:
        return 0
    some = marks(len(ids))
    await tx.execute(f"DELETE FROM batch_tasks WHERE batch_id IN ({some})", ids)  # noqa: S608
    return await tx.execute(f"DELETE FROM batches WHERE id IN ({some})", ids)  # noqa: S608
