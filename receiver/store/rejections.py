"""Keeping authenticated callbacks refused for their content, and recording their retries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from receiver.errors import AlreadyAccepted
from receiver.events import format_time, format_timestamp
from receiver.store import writes
from receiver.store.records import Receipt, RejectedQuery, RejectedRequest, Rejection, Stored
from receiver.store.tx import Tx

_COLUMNS = """
    id, source, received_at, peer, client, headers, body, status, code, message, field, retries,
    retried_at, outcome, retry_error, event_ids
"""
_INSERT = f"""
    INSERT INTO rejected ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL,
        NULL)
"""  # noqa: S608
# Counting stops at the cap: a cap lowered below what is kept costs no more than the cap.
_KEPT = "SELECT COUNT(*) FROM (SELECT 1 FROM rejected WHERE source = ? LIMIT ?) AS kept"
# Only one not accepted yet: of two retries at once, the second writes nothing (and rolls back).
_NOT_ACCEPTED = "(outcome IS NULL OR outcome = 'rejected')"
_RETRIED = f"""
    UPDATE rejected SET retries = retries + 1, retried_at = ?, outcome = ?, retry_error = ?,
        event_ids = ?
    WHERE id = ? AND {_NOT_ACCEPTED}
"""  # noqa: S608


async def keep(tx: Tx, rejections: Sequence[Rejection], now: float) -> list[bool]:
    """Insert each rejection its source's cap leaves room for; whether each was kept."""
    caps: dict[str, int] = {}
    for rejection in rejections:
        caps[rejection.source] = max(caps.get(rejection.source, 0), rejection.keep_at_most)
    kept: dict[str, int] = {}
    for source in sorted(caps):
        [(count,)] = await tx.fetch(_KEPT, (source, caps[source]))
        kept[source] = int(count)
    rows, results = [], []
    for r in rejections:
        room = kept[r.source] < r.keep_at_most
        results.append(room)
        if room:
            kept[r.source] += 1
            rows.append(
                (
                    r.id,
                    r.source,
                    format_time(r.received_at),
                    r.peer,
                    r.client,
                    r.headers.decode(),
                    r.body,
                    r.status,
                    r.code,
                    r.message,
                    r.field,
                )
            )
    if rows:
        await tx.executemany(_INSERT, rows)
    return results


async def list_rejected(tx: Tx, query: RejectedQuery) -> list[RejectedRequest]:
    where, parameters = [], list[Any]()
    if query.source is not None:
        where.append("source = ?")
        parameters.append(query.source)
    if query.retryable:
        where.append(f"{_NOT_ACCEPTED} AND body IS NOT NULL")
    if query.before is not None:
        where.append("id < ?")
        parameters.append(query.before)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    found = await tx.fetch(
        f"SELECT {_COLUMNS} FROM rejected {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608
        [*parameters, query.limit],
    )
    return [_record(row) for row in found]


async def get_rejected(tx: Tx, rejected_id: str) -> RejectedRequest | None:
    found = await tx.fetch(f"SELECT {_COLUMNS} FROM rejected WHERE id = ?", (rejected_id,))  # noqa: S608
    return _record(found[0]) if found else None


async def accept(tx: Tx, now: float, rejected_id: str, receipt: Receipt) -> Stored:
    """Store the retried request's receipt and events, and record what it came to, at once.
    Raises :class:`AlreadyAccepted` (nothing written) when another retry accepted it first."""
    [stored] = await writes.write_batch(tx, [receipt], now)
    outcome = "duplicate" if stored.duplicate else "accepted"
    event_ids = orjson.dumps(list(stored.event_ids)).decode()
    row = (format_timestamp(now), outcome, None, event_ids, rejected_id)
    if not await tx.execute(_RETRIED, row):
        raise AlreadyAccepted("another retry accepted it meanwhile; it is not run again")
    return stored


async def refuse(tx: Tx, now: float, rejected_id: str, error: dict[str, Any]) -> None:
    """Record that a retry was refused again, and why; raises :class:`AlreadyAccepted` when
    another retry accepted it meanwhile (its record is left as that one wrote it)."""
    row = (format_timestamp(now), "rejected", orjson.dumps(error).decode(), None, rejected_id)
    if not await tx.execute(_RETRIED, row):
        raise AlreadyAccepted("another retry accepted it meanwhile; it is not run again")


def _record(row: Any) -> RejectedRequest:
    (
        rejected_id,
        source,
        received_at,
        peer,
        client,
        headers,
        body,
        status,
        code,
        message,
        field,
        retries,
        retried_at,
        outcome,
        retry_error,
        event_ids,
    ) = row
    return RejectedRequest(
        id=rejected_id,
        source=source,
        received_at=received_at,
        peer=peer,
        client=client,
        headers=orjson.loads(headers),
        body=bytes(body) if body is not None else None,
        status=int(status),
        code=code,
        message=message,
        field=field,
        retries=int(retries),
        retried_at=retried_at,
        outcome=outcome,
        retry_error=orjson.loads(retry_error) if retry_error is not None else None,
        event_ids=orjson.loads(event_ids) if event_ids is not None else [],
    )
