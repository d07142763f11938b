"""Mapping records to database rows and back, for every engine."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from receiver.events import Event, KeptResult, format_time, parse_time
from receiver.states import KeptState
from receiver.store.records import (
    AttemptRecord,
    Delivery,
    KeptFile,
    NewEvent,
    Receipt,
    ReceiptRecord,
    Task,
)

EVENT_COLUMNS = """
    e.id, e.source, e.kind, e.type, e.task_id, e.task_type, e.status, e.business_id,
    e.labels, e.result_urls, e.flagged, e.received_at, e.via, r.body
"""
RECEIPT_COLUMNS = "id, source, via, received_at, peer, client, headers, body, duplicate"
ATTEMPT_COLUMNS = """
    number, started_at, duration_ms, ok, status_code, error, response_headers, response_body
"""
TASK_COLUMNS = """
    source, task_id, business_id, state, event_id, created_at, last_seen_at, expires_at,
    next_check_at, checks, last_error
"""
DELIVERY_COLUMNS = """
    d.id, d.event_id, d.destination, d.state, d.attempts, d.tries, d.next_attempt_at,
    d.last_status, d.last_error, d.created_at, d.updated_at, d.message_id
"""


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


#: Its parameters: :func:`receipt_row`.
INSERT_RECEIPT = """
    INSERT INTO receipts (id, source, via, received_at, peer, client, headers, body, body_sha256,
        event_ids, duplicate, trace_context)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
#: Its parameters: :func:`event_row`.
INSERT_EVENT = """
    INSERT INTO events (id, source, kind, type, task_id, task_type, status, business_id, labels,
        result_urls, flagged, received_at, via, receipt_id, status_rank)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def receipt_row(receipt: Receipt, event_ids: list[str], *, duplicate: bool) -> tuple[Any, ...]:
    return (
        receipt.id,
        receipt.source,
        receipt.via,
        format_time(receipt.received_at),
        receipt.peer,
        receipt.client,
        receipt.headers.decode(),
        receipt.body,
        receipt.body_sha256,
        json_text(event_ids),
        int(duplicate),
        receipt.trace_context,
    )


def event_row(new: NewEvent, receipt_id: str) -> tuple[Any, ...]:
    event = new.event
    return (
        event.id,
        event.source,
        event.kind,
        event.type,
        event.task_id,
        event.task_type,
        event.status,
        event.business_id,
        json_text(event.labels),
        json_text(event.result_urls),
        int(event.flagged),
        format_time(event.received_at),
        event.via,
        receipt_id,
        new.rank,
    )


def event(row: Any) -> Event:
    (
        event_id,
        source,
        kind,
        event_type,
        task_id,
        task_type,
        status,
        business_id,
        labels,
        result_urls,
        flagged,
        received_at,
        via,
        body,
    ) = row
    return Event(
        id=event_id,
        source=source,
        kind=kind,
        type=event_type,
        task_id=task_id,
        task_type=task_type,
        status=status,
        business_id=business_id,
        labels=tuple(orjson.loads(labels)),
        result_urls=tuple(orjson.loads(result_urls)),
        flagged=bool(flagged),
        received_at=parse_time(received_at),
        payload=orjson.loads(body),
        via=via,
    )


def delivery(row: Any) -> Delivery:
    return Delivery(*row[:12])


def receipt(row: Any) -> ReceiptRecord:
    receipt_id, source, via, received_at, peer, client, headers, body, duplicate = row
    return ReceiptRecord(
        id=receipt_id,
        source=source,
        via=via,
        received_at=received_at,
        peer=peer,
        client=client,
        headers=orjson.loads(headers),
        body=bytes(body).decode("utf-8", "replace"),
        duplicate=bool(duplicate),
    )


def attempt(row: Any) -> AttemptRecord:
    number, started_at, duration_ms, ok, status_code, error, headers, body = row
    return AttemptRecord(
        number=number,
        started_at=started_at,
        duration_ms=duration_ms,
        ok=bool(ok),
        status_code=status_code,
        error=error,
        response_headers=orjson.loads(headers) if headers else None,
        response_body=bytes(body).decode("utf-8", "replace") if body is not None else None,
    )


def task(row: Any) -> Task:
    return Task(*row[:11])


def with_kept(event: Event, files: list[KeptFile]) -> Event:
    """``event`` with its finished kept files as ``kept_results`` (their stable URLs are made
    when it is sent)."""
    return replace(event, kept_results=kept_of(files))


def kept_of(files: list[KeptFile]) -> tuple[KeptResult, ...]:
    """The finished ones of an event's kept files, as delivered (without stable URLs yet)."""
    return tuple(
        KeptResult(
            url=f.url,
            status=f.state,
            size=f.size,
            content_type=f.content_type,
            sha256=f.sha256,
            error=f.last_error,
            position=f.position,
            key=f.storage_key,
        )
        for f in files
        if f.state in (KeptState.KEPT, KeptState.MISSING)
    )
