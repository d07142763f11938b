"""Kept result files: each file of an event with ``keep_results`` waits to be fetched into the
result store, leased to one keeper at a time; once the event's last file is kept or missing, its
deliveries (planned as ``keeping``) become pending in the same transaction. A batch's event
waits, the same way, for the files of its tasks' events."""

from __future__ import annotations

from collections.abc import Sequence

from receiver.events import Event
from receiver.states import DeliveryState, KeptState
from receiver.store.records import FileOutcome, KeptFile
from receiver.store.tx import Tx, marks

_PARAMETERS_PER_QUERY = 500

#: Its parameters: :func:`new_rows`.
INSERT_KEPT_FILE = """
    INSERT INTO kept_files (event_id, position, url, state, next_attempt_at, created_at,
        updated_at)
    VALUES (?, ?, ?, 'waiting', ?, ?, ?)
"""
COLUMNS = """
    event_id, position, url, state, attempts, next_attempt_at, storage_key, size, content_type,
    sha256, last_error, kept_at
"""


def new_rows(event: Event, now: float) -> list[tuple[str, int, str, float, float, float]]:
    """A waiting row for each result file of ``event``, due at once."""
    return [(event.id, index, url, now, now, now) for index, url in enumerate(event.result_urls)]


def _file(row: Sequence[object]) -> KeptFile:
    return KeptFile(*row)  # type: ignore[arg-type]


async def any_recorded(tx: Tx) -> bool:
    """Whether any result file is recorded, in whatever state."""
    return bool(await tx.fetch("SELECT 1 FROM kept_files LIMIT 1"))


async def unfinished(tx: Tx, event_id: str) -> bool:
    """Whether a file of the event still waits. Its rows are locked until the transaction ends,
    so that this and a keeper recording its last file never both miss each other's change."""
    found = await tx.fetch(
        f"SELECT state FROM kept_files WHERE event_id = ? ORDER BY position{tx.dialect.for_update}",  # noqa: S608
        (event_id,),
    )
    return any(state == KeptState.WAITING for (state,) in found)


async def claim(
    tx: Tx, worker_id: str, limit: int, lease: float, now: float
) -> tuple[list[KeptFile], float | None]:
    """Lease up to ``limit`` due files (waiting, or pruned and still stored); and when the next
    one falls due."""
    found = await tx.fetch(
        f"SELECT {COLUMNS} FROM kept_files"  # noqa: S608
        " WHERE state IN ('waiting', 'pruned') AND next_attempt_at <= ?"
        " AND (lease_expires_at IS NULL OR lease_expires_at <= ?)"
        f" ORDER BY next_attempt_at LIMIT ?{tx.dialect.skip_locked}",
        (now, now, limit),
    )
    files = [_file(row) for row in found]
    if files:
        await tx.executemany(
            "UPDATE kept_files SET lease_owner = ?, lease_expires_at = ?"
            " WHERE event_id = ? AND position = ?",
            [(worker_id, now + lease, f.event_id, f.position) for f in files],
        )
    [(due,)] = await tx.fetch(
        "SELECT MIN(next_attempt_at) FROM kept_files"
        " WHERE state IN ('waiting', 'pruned') AND next_attempt_at > ?",
        (now,),
    )
    return files, due


async def release(tx: Tx, worker_id: str) -> None:
    """Give up the leases of a keeper that stops."""
    await tx.execute(
        "UPDATE kept_files SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ?",
        (worker_id,),
    )


async def finish(tx: Tx, now: float, outcome: FileOutcome) -> bool:
    """Record a fetch of a leased file. When it was the event's last waiting file, its
    ``keeping`` deliveries become pending; whether they did. A report from a keeper whose lease
    was taken over changes nothing."""
    await unfinished(tx, outcome.event_id)  # locks the event's files: see there
    kept = outcome.state == KeptState.KEPT
    changed = await tx.execute(
        "UPDATE kept_files SET state = ?, attempts = attempts + ?,"
        " next_attempt_at = COALESCE(?, next_attempt_at), storage_key = ?, size = ?,"
        " content_type = ?, sha256 = ?, last_error = ?, kept_at = ?, updated_at = ?,"
        " lease_owner = NULL, lease_expires_at = NULL"
        " WHERE event_id = ? AND position = ? AND lease_owner = ? AND state = 'waiting'",
        (
            outcome.state,
            int(outcome.counted),
            outcome.next_attempt_at,
            outcome.storage_key,
            outcome.size,
            outcome.content_type,
            outcome.sha256,
            outcome.error,
            now if kept else None,
            now,
            outcome.event_id,
            outcome.position,
            outcome.worker_id,
        ),
    )
    if not changed or outcome.state == KeptState.WAITING:
        return False
    if await unfinished(tx, outcome.event_id):
        return False
    released = await tx.execute(
        "UPDATE deliveries SET state = ?, next_attempt_at = ?, updated_at = ?"
        " WHERE event_id = ? AND state = ?",
        (DeliveryState.PENDING, now, now, outcome.event_id, DeliveryState.KEEPING),
    )
    released += await _release_batches(tx, outcome.event_id, now)
    if released:
        await tx.notify()
    return bool(released)


async def tasks_waiting(tx: Tx, batch_id: str) -> bool:
    """Whether a file of the final event of any of the batch's tasks still waits: the batch's
    event then waits too, as ``keeping``, so that it can list each task's kept files."""
    found = await tx.fetch(
        "SELECT 1 FROM batch_tasks t JOIN kept_files k ON k.event_id = t.event_id"
        " WHERE t.batch_id = ? AND k.state = 'waiting' LIMIT 1",
        (batch_id,),
    )
    return bool(found)


async def release_stranded(tx: Tx, now: float) -> int:
    """Release the waiting deliveries of batch events none of whose tasks' files still wait: on
    PostgreSQL, a batch that a declaration completes while a keeper records the last file of one
    of its tasks' events can leave each transaction blind to the other's change. The batches'
    sweep calls this, so such an event goes out within a sweep."""
    return await tx.execute(
        "UPDATE deliveries SET state = ?, next_attempt_at = ?, updated_at = ?"
        " WHERE state = ? AND source = 'batches' AND NOT EXISTS (SELECT 1 FROM batches b"
        " JOIN batch_tasks t ON t.batch_id = b.id JOIN kept_files k ON k.event_id = t.event_id"
        " WHERE b.event_id = deliveries.event_id AND k.state = 'waiting')",
        (DeliveryState.PENDING, now, now, DeliveryState.KEEPING),
    )


async def _release_batches(tx: Tx, event_id: str, now: float) -> int:
    """Release the waiting deliveries of the events of the finished batches this event's task
    belongs to, once no file of theirs waits. The batch rows are locked first, as storing a
    batch's event locks them, so that of the two, the later sees the other's change."""
    batch_ids = [
        batch_id
        for (batch_id,) in await tx.fetch(
            "SELECT batch_id FROM batch_tasks WHERE event_id = ? ORDER BY batch_id", (event_id,)
        )
    ]
    released = 0
    for batch_id in batch_ids:
        [(batch_event,)] = await tx.fetch(
            f"SELECT event_id FROM batches WHERE id = ?{tx.dialect.for_no_key_update}",  # noqa: S608
            (batch_id,),
        )
        if batch_event is None or await tasks_waiting(tx, batch_id):
            continue
        released += await tx.execute(
            "UPDATE deliveries SET state = ?, next_attempt_at = ?, updated_at = ?"
            " WHERE event_id = ? AND state = ?",
            (DeliveryState.PENDING, now, now, batch_event, DeliveryState.KEEPING),
        )
    return released


async def forget(tx: Tx, now: float, files: Sequence[tuple[str, int]]) -> None:
    """Delete the rows of pruned files whose stored copies were deleted."""
    await tx.executemany(
        "DELETE FROM kept_files WHERE event_id = ? AND position = ? AND state = 'pruned'",
        [(event_id, position) for event_id, position in files],
    )


async def of_events(tx: Tx, event_ids: Sequence[str]) -> dict[str, list[KeptFile]]:
    """The files of these events, by event id, in position order (pruned ones left out)."""
    found: dict[str, list[KeptFile]] = {}
    ids = sorted(set(event_ids))
    for start in range(0, len(ids), _PARAMETERS_PER_QUERY):
        chunk = ids[start : start + _PARAMETERS_PER_QUERY]
        for row in await tx.fetch(
            f"SELECT {COLUMNS} FROM kept_files WHERE event_id IN ({marks(len(chunk))})"  # noqa: S608
            " AND state != 'pruned' ORDER BY event_id, position",
            chunk,
        ):
            kept = _file(row)
            found.setdefault(kept.event_id, []).append(kept)
    return found


async def get(tx: Tx, event_id: str, position: int) -> KeptFile | None:
    """One kept file (not pruned), or None."""
    found = await tx.fetch(
        f"SELECT {COLUMNS} FROM kept_files WHERE event_id = ? AND position = ?"  # noqa: S608
        " AND state != 'pruned'",
        (event_id, position),
    )
    return _file(found[0]) if found else None


async def waiting_for(tx: Tx, event_ids: Sequence[str]) -> set[str]:
    """Those of these events with a file still waiting."""
    if not event_ids:
        return set()
    found = await tx.fetch(
        "SELECT DISTINCT event_id FROM kept_files"  # noqa: S608
        f" WHERE event_id IN ({marks(len(event_ids))}) AND state = 'waiting'",
        list(event_ids),
    )
    return {str(event_id) for (event_id,) in found}
