"""The transactional outbox: deliveries leased to workers, attempts recorded, destinations
paused, disabled and resumed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import NamedTuple

from receiver.ids import new_id
from receiver.states import DeliveryState, DestinationState
from receiver.store import kept_files, rows
from receiver.store.records import Attempt, Claim, DestinationStatus, Outcome
from receiver.store.tx import Tx, conditions, marks

_PARAMETERS_PER_QUERY = 500

INSERT_DELIVERY = """
    INSERT INTO deliveries (id, event_id, destination, source, task_id, state, next_attempt_at,
        last_error, created_at, updated_at, message_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


class DeliveryRow(NamedTuple):
    """The parameters of :data:`INSERT_DELIVERY`, in its order."""

    id: str
    event_id: str
    destination: str
    source: str
    task_id: str
    state: str
    next_attempt_at: float
    last_error: str | None
    created_at: float
    updated_at: float
    message_id: str | None  # None: sent under the event's id


def new_delivery(
    event_id: str,
    destination: str,
    source: str,
    task_id: str,
    now: float,
    *,
    state: str = DeliveryState.PENDING,
    last_error: str | None = None,
    new_message: bool = False,
) -> DeliveryRow:
    """A new delivery, due at once; ``new_message`` gives it a ``webhook-id`` of its own."""
    return DeliveryRow(
        new_id("dlv"),
        event_id,
        destination,
        source,
        task_id,
        state,
        now,
        last_error,
        now,
        now,
        new_id("msg") if new_message else None,
    )


# A delivery waits while an earlier event of its task waits for the same destination.
_NOT_BLOCKED = """
    NOT EXISTS (
        SELECT 1 FROM deliveries p
        WHERE p.destination = d.destination AND p.task_id = d.task_id AND p.source = d.source
          AND p.event_id < d.event_id
          AND p.state IN ('pending', 'retrying', 'held', 'confirming', 'keeping')
    )
"""
_DUE = f"""
    d.state IN ('pending', 'retrying') AND d.next_attempt_at <= ?
    AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= ?) AND {_NOT_BLOCKED}
"""


async def claim(
    tx: Tx,
    limits: Mapping[str, int],
    worker_id: str,
    lease_seconds: float,
    now: float,
    busy: Mapping[str, int] | None = None,
) -> tuple[list[Claim], float | None]:
    """Lease due deliveries, at most ``limits[destination]`` of a destination at once across all
    workers; and when the next delivery of a destination with room falls due.

    Every other worker's leases count against the limit. So do this worker's own, unless it
    says how many of its deliveries of each destination are under way (``busy``): a delivery
    whose request is over but whose outcome is not yet committed is still leased, but no longer
    in flight, and its place can be taken.
    """
    states = {str(name): str(state) for name, state in await tx.fetch(_DESTINATION_STATES)}
    if any(state != DestinationState.ACTIVE for state in states.values()):
        await _hold_inactive(tx, now)
    active = sorted(
        n for n, state in states.items() if state == DestinationState.ACTIVE and limits.get(n)
    )
    if active and tx.dialect.for_update:
        # Claims of one destination take turns across processes, so the leased count is exact.
        await tx.fetch(
            f"SELECT name FROM destinations WHERE name IN ({marks(len(active))})"  # noqa: S608
            f" ORDER BY name{tx.dialect.for_update}",
            active,
        )
    leased: dict[str, int] = dict(busy or {})
    if active:
        others = " AND lease_owner != ?" if busy is not None else ""
        for name, count in await tx.fetch(
            "SELECT destination, COUNT(*) FROM deliveries"  # noqa: S608
            f" WHERE destination IN ({marks(len(active))}) AND lease_expires_at > ?{others}"
            " AND state IN ('pending', 'retrying') GROUP BY destination",
            (*active, now, *((worker_id,) if busy is not None else ())),
        ):
            leased[name] = leased.get(name, 0) + count
    claimed: list[str] = []
    with_room: list[str] = []
    for destination in active:
        room = limits[destination] - leased.get(destination, 0)
        if room <= 0:
            continue
        ids = [
            str(delivery_id)
            for (delivery_id,) in await tx.fetch(
                f"SELECT d.id FROM deliveries d WHERE d.destination = ? AND {_DUE}"  # noqa: S608
                f" ORDER BY d.next_attempt_at, d.event_id LIMIT ?{tx.dialect.skip_locked}",
                (destination, now, now, room),
            )
        ]
        if ids:
            await tx.execute(
                "UPDATE deliveries SET lease_owner = ?, lease_expires_at = ?"  # noqa: S608
                f" WHERE id IN ({marks(len(ids))})",
                (worker_id, now + lease_seconds, *ids),
            )
            claimed.extend(ids)
        if len(ids) < room:
            with_room.append(destination)
    return await _claims(tx, claimed), await _next_due(tx, with_room, now)


async def _next_due(tx: Tx, destinations: list[str], now: float) -> float | None:
    """When a delivery of these destinations may next be claimable: the next retry falling due
    or lease running out. Both are read off an index, however long the backlog of retries."""
    found: list[float] = []
    for destination in destinations:
        [(due, expiry)] = await tx.fetch(
            "SELECT (SELECT MIN(next_attempt_at) FROM deliveries WHERE destination = ?"
            " AND state IN ('pending', 'retrying') AND next_attempt_at > ?),"
            " (SELECT MIN(lease_expires_at) FROM deliveries WHERE destination = ?"
            " AND lease_expires_at > ?)",
            (destination, now, destination, now),
        )
        found.extend(moment for moment in (due, expiry) if moment is not None)
    return min(found, default=None)


async def _claims(tx: Tx, ids: list[str]) -> list[Claim]:
    claims = []
    keeping: set[str] = set()
    for start in range(0, len(ids), _PARAMETERS_PER_QUERY):
        chunk = ids[start : start + _PARAMETERS_PER_QUERY]
        for row in await tx.fetch(
            f"SELECT {rows.DELIVERY_COLUMNS}, {rows.EVENT_COLUMNS}, r.trace_context,"  # noqa: S608
            " EXISTS (SELECT 1 FROM kept_files k WHERE k.event_id = e.id) FROM deliveries d"
            " JOIN events e ON e.id = d.event_id JOIN receipts r ON r.id = e.receipt_id"
            f" WHERE d.id IN ({marks(len(chunk))}) ORDER BY d.event_id",
            chunk,
        ):
            claims.append(Claim(rows.delivery(row[:12]), rows.event(row[12:-2]), row[-2]))
            if row[-1]:
                keeping.add(row[12])
    if keeping:
        # Only events with kept files cost this one more query, once per claim.
        found = await kept_files.of_events(tx, sorted(keeping))
        claims = [
            replace(c, event=rows.with_kept(c.event, found.get(c.event.id, [])))
            if c.event.id in found
            else c
            for c in claims
        ]
    return claims


async def finish(tx: Tx, outcomes: Sequence[Outcome], now: float) -> None:
    """Record the attempts and the deliveries' new states. A report from a worker whose lease
    was taken over is recorded as an attempt but changes nothing."""
    outcomes = sorted(outcomes, key=lambda outcome: outcome.delivery_id)
    await _record_failures(tx, [o for o in outcomes if not o.attempt.ok])
    # Each delivery's attempt is numbered before the update below counts it.
    await tx.executemany(
        "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, ok, status_code,"
        " error, response_headers, response_body)"
        " VALUES (?, (SELECT attempts + 1 FROM deliveries WHERE id = ?), ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                o.delivery_id,
                o.delivery_id,
                o.attempt.started_at,
                o.attempt.duration_ms,
                int(o.attempt.ok),
                o.attempt.status_code,
                o.attempt.error,
                o.attempt.response_headers.decode() if o.attempt.response_headers else None,
                o.attempt.response_body,
            )
            for o in outcomes
        ],
    )
    await tx.executemany(
        "UPDATE deliveries SET state = ?, attempts = attempts + 1, tries = tries + 1,"
        " next_attempt_at = COALESCE(?, next_attempt_at), last_status = ?,"
        " last_error = ?, updated_at = ?, lease_owner = NULL, lease_expires_at = NULL"
        " WHERE id = ? AND lease_owner = ?",
        [
            (
                o.state,
                o.next_attempt_at,
                o.attempt.status_code,
                o.attempt.error,
                now,
                o.delivery_id,
                o.worker_id,
            )
            for o in outcomes
        ],
    )
    for outcome in outcomes:
        if outcome.disable_destination is not None:
            [(name,)] = await tx.fetch(
                "SELECT destination FROM deliveries WHERE id = ?", (outcome.delivery_id,)
            )
            await set_destination_state(
                tx, now, name, DestinationState.DISABLED, outcome.disable_destination
            )


async def add_deliveries(
    tx: Tx, event_id: str, destinations: Iterable[str], now: float, *, new_message: bool = False
) -> list[str]:
    """New pending deliveries of an event (a replay); their ids. With ``new_message``, each is
    sent under a new ``webhook-id``, for receivers that must process it again."""
    found = await tx.fetch("SELECT source, task_id FROM events WHERE id = ?", (event_id,))
    if not found:
        return []
    [(source, task_id)] = found
    # A replay of an event whose files are still being kept waits for them too.
    waiting = await kept_files.unfinished(tx, event_id)
    state = DeliveryState.KEEPING if waiting else DeliveryState.PENDING
    new = [
        new_delivery(event_id, name, source, task_id, now, state=state, new_message=new_message)
        for name in destinations
    ]
    await tx.executemany(INSERT_DELIVERY, new)
    await tx.notify()
    return [row.id for row in new]


async def requeue(
    tx: Tx,
    now: float,
    *,
    delivery_id: str | None = None,
    destination: str | None = None,
    event_id: str | None = None,
) -> int:
    """Queue dead deliveries again (matching all given filters); how many."""
    matching, parameters = conditions(
        ("id =", delivery_id), ("destination =", destination), ("event_id =", event_id)
    )
    count = await tx.execute(
        "UPDATE deliveries SET state = 'pending', tries = 0, next_attempt_at = ?,"  # noqa: S608
        f" updated_at = ? WHERE state = 'dead'{''.join(f' AND {m}' for m in matching)}",
        (now, now, *parameters),
    )
    if count:
        await tx.notify()
    return count


async def sync_destinations(tx: Tx, names: Iterable[str], now: float) -> None:
    await tx.executemany(
        "INSERT INTO destinations (name, state, updated_at) VALUES (?, 'active', ?)"
        " ON CONFLICT (name) DO NOTHING",
        [(name, now) for name in sorted(names)],
    )


async def set_destination_state(
    tx: Tx, now: float, name: str, state: str, reason: str | None
) -> bool:
    """Pause, disable or resume a destination; False if there is no such destination."""
    changed = await tx.execute(
        "UPDATE destinations SET state = ?, reason = ?, updated_at = ? WHERE name = ?",
        (state, reason, now, name),
    )
    if not changed:
        return False
    if state == DestinationState.ACTIVE:
        released = await tx.execute(
            "UPDATE deliveries SET state = CASE WHEN tries > 0 THEN 'retrying' ELSE 'pending' END,"
            " next_attempt_at = ?, updated_at = ? WHERE destination = ? AND state = 'held'",
            (now, now, name),
        )
        if released:
            await tx.notify()
    else:
        # Deliveries in flight finish; the rest wait, visible as held, until it is resumed.
        await tx.execute(
            "UPDATE deliveries SET state = 'held', updated_at = ? WHERE destination = ?"
            " AND state IN ('pending', 'retrying')"
            " AND (lease_expires_at IS NULL OR lease_expires_at <= ?)",
            (now, name, now),
        )
    return True


async def _hold_inactive(tx: Tx, now: float) -> None:
    """Deliveries created while their destination was paused or disabled wait as held."""
    await tx.execute(
        "UPDATE deliveries SET state = 'held', updated_at = ?"
        " WHERE state IN ('pending', 'retrying') AND lease_owner IS NULL"
        " AND destination IN (SELECT name FROM destinations WHERE state != 'active')",
        (now,),
    )


#: What /metrics and the dashboard show of each destination: each part reads the last hour's
#: attempts or what is queued, never every delivery a destination ever had.
DESTINATION_STATUSES = """
    SELECT t.name, t.state, t.reason,
        COALESCE(recent.attempts, 0), COALESCE(recent.successes, 0), t.last_error,
        (SELECT COUNT(*) FROM deliveries d WHERE d.destination = t.name
         AND d.state IN ('pending', 'retrying', 'held', 'keeping')),
        (SELECT MIN(d.created_at) FROM deliveries d WHERE d.destination = t.name
         AND d.state IN ('pending', 'retrying', 'held', 'keeping')),
        (SELECT COUNT(*) FROM deliveries d WHERE d.destination = t.name AND d.state = 'dead')
    FROM destinations t LEFT JOIN (
        SELECT d.destination, COUNT(*) AS attempts, SUM(a.ok) AS successes
        FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
        WHERE a.started_at >= ? GROUP BY d.destination
    ) recent ON recent.destination = t.name
    ORDER BY t.name
"""


async def destination_statuses(tx: Tx, now: float) -> list[DestinationStatus]:
    found = await tx.fetch(DESTINATION_STATUSES, (now - 3600,))
    return [DestinationStatus(*row) for row in found]


_DESTINATION_STATES = "SELECT name, state FROM destinations"


async def _record_failures(tx: Tx, failed: Sequence[Outcome]) -> None:
    """Keep each destination's latest failure. Destination rows are taken in name order and
    before any delivery's, as pausing a destination takes them."""
    if not failed:
        return
    ids = sorted({o.delivery_id for o in failed})
    found = await tx.fetch(
        f"SELECT id, destination FROM deliveries WHERE id IN ({marks(len(ids))})",  # noqa: S608
        ids,
    )
    destination: dict[str, str] = {row[0]: row[1] for row in found}
    latest: dict[str, str] = {}
    for outcome in sorted(failed, key=lambda outcome: outcome.attempt.started_at):
        name, error = destination.get(outcome.delivery_id), _error(outcome.attempt)
        if name is not None and error is not None:
            latest[name] = error
    await tx.executemany(
        "UPDATE destinations SET last_error = ? WHERE name = ?",
        [(error, name) for name, error in sorted(latest.items())],
    )


def _error(attempt: Attempt) -> str | None:
    """A failed attempt as its destination's last error: its error, else its HTTP status."""
    if attempt.error is not None:
        return attempt.error
    return None if attempt.status_code is None else f"HTTP {attempt.status_code}"
