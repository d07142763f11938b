"""Reading events, deliveries and their history, and batches, for the admin API, the dashboard
and the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receiver.events import Event, format_time
from receiver.store import batch_events, batches, kept_files, rows
from receiver.store.records import (
    AttemptRecord,
    Batch,
    BatchQuery,
    BatchTask,
    Delivery,
    DeliveryQuery,
    EventDetail,
    EventQuery,
)
from receiver.store.tx import Tx, conditions, marks

_PARAMETERS_PER_QUERY = 500


async def list_events(tx: Tx, query: EventQuery) -> list[Event]:
    conditions, parameters = _event_filters(tx, query)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    found = await tx.fetch(
        f"SELECT {rows.EVENT_COLUMNS} FROM events e"  # noqa: S608
        f" JOIN receipts r ON r.id = e.receipt_id {where} ORDER BY e.id DESC LIMIT ?",
        [*parameters, query.limit],
    )
    return [rows.event(row) for row in found]


async def get_event(tx: Tx, event_id: str) -> Event | None:
    found = await tx.fetch(
        f"SELECT {rows.EVENT_COLUMNS} FROM events e"  # noqa: S608
        " JOIN receipts r ON r.id = e.receipt_id WHERE e.id = ?",
        [event_id],
    )
    return next((rows.event(row) for row in found), None)


async def events_by_id(tx: Tx, event_ids: Sequence[str]) -> dict[str, Event]:
    found: dict[str, Event] = {}
    for chunk in _chunks(event_ids):
        for row in await tx.fetch(
            f"SELECT {rows.EVENT_COLUMNS} FROM events e"  # noqa: S608
            f" JOIN receipts r ON r.id = e.receipt_id WHERE e.id IN ({marks(len(chunk))})",
            chunk,
        ):
            event = rows.event(row)
            found[event.id] = event
    return found


async def deliveries_of(tx: Tx, event_ids: Sequence[str]) -> dict[str, list[Delivery]]:
    found: dict[str, list[Delivery]] = {}
    for chunk in _chunks(event_ids):
        for row in await tx.fetch(
            f"SELECT {rows.DELIVERY_COLUMNS} FROM deliveries d"  # noqa: S608
            f" WHERE d.event_id IN ({marks(len(chunk))}) ORDER BY d.destination, d.id",
            chunk,
        ):
            delivery = rows.delivery(row)
            found.setdefault(delivery.event_id, []).append(delivery)
    return found


async def list_deliveries(tx: Tx, query: DeliveryQuery) -> list[Delivery]:
    filters, parameters = conditions(
        ("d.state =", query.state),
        ("d.event_id =", query.event_id),
        ("d.destination =", query.destination),
        ("d.id =", query.delivery_id),
        ("d.id <", query.before),
    )
    where = f"WHERE {' AND '.join(filters)}" if filters else ""
    order = "d.state = 'dead' DESC, d.id DESC" if query.dead_first else "d.id DESC"
    found = await tx.fetch(
        f"SELECT {rows.DELIVERY_COLUMNS} FROM deliveries d {where}"  # noqa: S608
        f" ORDER BY {order} LIMIT ?",
        [*parameters, query.limit],
    )
    return [rows.delivery(row) for row in found]


async def event_detail(tx: Tx, event_id: str) -> EventDetail | None:
    event = await get_event(tx, event_id)
    if event is None:
        return None
    holds = tx.dialect.json_array_holds.format(column="receipts.event_ids")
    found = await tx.fetch(
        f"SELECT {rows.RECEIPT_COLUMNS} FROM receipts"  # noqa: S608
        " WHERE id = (SELECT receipt_id FROM events WHERE id = ?)"
        f" UNION ALL SELECT {rows.RECEIPT_COLUMNS} FROM receipts WHERE duplicate = 1 AND {holds}"
        " ORDER BY received_at",
        [event_id, event_id],
    )
    [(duplicates,)] = await tx.fetch("SELECT duplicates FROM events WHERE id = ?", [event_id])
    deliveries = await list_deliveries(tx, DeliveryQuery(event_id=event_id, limit=1000))
    history = await attempts(tx, [d.id for d in deliveries])
    return EventDetail(
        event=event,
        duplicates=duplicates,
        receipts=[rows.receipt(row) for row in found],
        deliveries=[(d, history.get(d.id, [])) for d in reversed(deliveries)],
        files=(await kept_files.of_events(tx, [event_id])).get(event_id, []),
    )


async def attempts(tx: Tx, delivery_ids: Sequence[str]) -> dict[str, list[AttemptRecord]]:
    found: dict[str, list[AttemptRecord]] = {}
    for chunk in _chunks(delivery_ids):
        for row in await tx.fetch(
            f"SELECT delivery_id, {rows.ATTEMPT_COLUMNS} FROM attempts"  # noqa: S608
            f" WHERE delivery_id IN ({marks(len(chunk))}) ORDER BY number",
            chunk,
        ):
            found.setdefault(row[0], []).append(rows.attempt(row[1:]))
    return found


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    return [
        list(ids[start : start + _PARAMETERS_PER_QUERY])
        for start in range(0, len(ids), _PARAMETERS_PER_QUERY)
    ]


def _event_filters(tx: Tx, query: EventQuery) -> tuple[list[str], list[Any]]:
    found, parameters = conditions(
        ("e.source =", query.source),
        ("e.type =", query.type),
        ("e.status =", query.status),
        ("e.task_id =", query.task_id),
        ("e.business_id =", query.business_id),
        ("e.flagged =", None if query.flagged is None else int(query.flagged)),
        ("e.received_at >=", None if query.since is None else format_time(query.since)),
        ("e.received_at <", None if query.until is None else format_time(query.until)),
        ("e.id <", query.before),
    )
    if query.dead_delivery:
        # Walks the dead deliveries (an index on the state), a small part of the history.
        found.append("e.id IN (SELECT event_id FROM deliveries WHERE state = 'dead')")
    if query.label is not None:
        found.append(tx.dialect.json_array_holds.format(column="e.labels"))
        parameters.append(query.label)
    return found, parameters


async def list_batches(tx: Tx, query: BatchQuery) -> list[Batch]:
    """Batches matching ``query``, newest first."""
    where, parameters = conditions(("b.state =", query.state))
    if query.before is not None:
        where.append(
            "(b.created_at < (SELECT created_at FROM batches WHERE id = ?)"
            " OR (b.created_at = (SELECT created_at FROM batches WHERE id = ?) AND b.id < ?))"
        )
        parameters += [query.before, query.before, query.before]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return [
        batches.batch(row)
        for row in await tx.fetch(
            f"SELECT {batches.BATCH_COLUMNS} FROM batches b {clause}"  # noqa: S608
            " ORDER BY b.created_at DESC, b.id DESC LIMIT ?",
            [*parameters, query.limit],
        )
    ]


async def batch_detail(tx: Tx, batch_id: str) -> tuple[Batch, list[BatchTask]] | None:
    """A batch and its tasks; None if unknown."""
    found = await batches.get_batch(tx, batch_id)
    if found is None:
        return None
    return found, await batch_events.tasks_of(tx, batch_id)
