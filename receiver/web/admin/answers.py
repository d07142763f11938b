"""The store's records as the admin API's answers (the structs of ``contract``), and their JSON."""

from __future__ import annotations

from typing import Any

import msgspec

from receiver import events
from receiver.events import format_timestamp
from receiver.states import (
    CHECKED,
    CLAIMABLE,
    BatchState,
    DeliveryState,
    DestinationState,
    KeptState,
    TaskState,
)
from receiver.store import records as store
from receiver.web.admin import contract

_encoder = msgspec.json.Encoder()


def encode(answer: Any) -> bytes:
    """An answer as JSON (a struct, or a list of them)."""
    return _encoder.encode(answer)


def event(found: events.Event) -> contract.Event:
    """The event as delivered (:meth:`~receiver.events.Event.to_dict`, its one shape), as the
    struct the API declares (tests/unit/web/admin/test_contract.py holds the two equal)."""
    return msgspec.convert(found.to_dict(), contract.Event)


def _time(seconds: float | None) -> str | None:
    return None if seconds is None else format_timestamp(seconds)


def _delivery_fields(found: store.Delivery) -> dict[str, Any]:
    waiting = found.state in CLAIMABLE
    return {
        "id": found.id,
        "event_id": found.event_id,
        "destination": found.destination,
        "state": DeliveryState(found.state),
        "attempts": found.attempts,
        "next_attempt_at": _time(found.next_attempt_at) if waiting else None,
        "last_status": found.last_status,
        "last_error": found.last_error,
        "created_at": format_timestamp(found.created_at),
        "updated_at": format_timestamp(found.updated_at),
    }


def delivery(found: store.Delivery) -> contract.Delivery:
    return contract.Delivery(**_delivery_fields(found))


def attempt(found: store.AttemptRecord) -> contract.Attempt:
    return contract.Attempt(
        number=found.number,
        started_at=format_timestamp(found.started_at),
        duration_ms=round(found.duration_ms, 3),
        ok=found.ok,
        status_code=found.status_code,
        error=found.error,
        response_headers=found.response_headers,
        response_body=found.response_body,
    )


def request(found: store.ReceiptRecord) -> contract.Request:
    return contract.Request(
        id=found.id,
        source=found.source,
        via=found.via,
        received_at=found.received_at,
        peer=found.peer,
        client=found.client,
        headers=found.headers,
        body=found.body,
        duplicate=found.duplicate,
    )


def event_detail(found: store.EventDetail) -> contract.EventDetail:
    return contract.EventDetail(
        event=event(found.event),
        duplicates=found.duplicates,
        request=request(found.receipts[0]) if found.receipts else None,
        other_requests=[request(receipt) for receipt in found.receipts[1:]],
        deliveries=[
            contract.DeliveryHistory(
                **_delivery_fields(delivery), history=[attempt(a) for a in attempts]
            )
            for delivery, attempts in found.deliveries
        ],
        files=[kept_file(file) for file in found.files],
    )


def kept_file(found: store.KeptFile) -> contract.KeptFile:
    waiting = found.state == KeptState.WAITING
    return contract.KeptFile(
        position=found.position,
        url=found.url,
        state=KeptState(found.state),
        attempts=found.attempts,
        next_attempt_at=_time(found.next_attempt_at) if waiting else None,
        size=found.size,
        content_type=found.content_type,
        sha256=found.sha256,
        error=found.last_error,
        kept_at=_time(found.kept_at),
    )


def destination(
    found: store.DestinationStatus, now: float, target: str | None
) -> contract.Destination:
    attempts = found.attempts_last_hour
    return contract.Destination(
        name=found.name,
        state=DestinationState(found.state),
        reason=found.reason,
        success_rate=round(found.successes_last_hour / attempts, 4) if attempts else None,
        attempts_last_hour=attempts,
        last_error=found.last_error,
        queue_depth=found.queue_depth,
        dead=found.dead,
        oldest_pending_age=round(now - found.oldest_pending_at, 3)
        if found.oldest_pending_at is not None
        else None,
        target=target,
    )


def task(found: store.Task) -> contract.Task:
    return contract.Task(
        source=found.source,
        task_id=found.task_id,
        business_id=found.business_id,
        state=TaskState(found.state),
        event_id=found.event_id,
        created_at=format_timestamp(found.created_at),
        last_seen_at=format_timestamp(found.last_seen_at),
        next_check_at=format_timestamp(found.next_check_at) if found.state in CHECKED else None,
        checks=found.checks,
        last_error=found.last_error,
    )


def _rejected_fields(found: store.RejectedRequest) -> dict[str, Any]:
    return {
        "id": found.id,
        "source": found.source,
        "received_at": found.received_at,
        "status": found.status,
        "error": contract.ErrorDetail(
            found.code, found.message, msgspec.UNSET if found.field is None else found.field
        ),
        "body_kept": found.body is not None,
        "retries": found.retries,
        "retried_at": found.retried_at,
        "outcome": found.outcome,
        "retry_error": None
        if found.retry_error is None
        else msgspec.convert(found.retry_error, contract.RetryError),
        "event_ids": found.event_ids,
    }


def rejected(found: store.RejectedRequest) -> contract.RejectedRequest:
    """A kept rejected request, without its headers and body."""
    return contract.RejectedRequest(**_rejected_fields(found))


def rejected_detail(found: store.RejectedRequest) -> contract.RejectedRequestDetail:
    """A kept rejected request with its headers and body (secret headers redacted)."""
    return contract.RejectedRequestDetail(
        **_rejected_fields(found),
        peer=found.peer,
        client=found.client,
        headers=found.headers,
        body=found.body.decode("utf-8", "replace") if found.body is not None else None,
    )


def _batch_fields(found: store.Batch) -> dict[str, Any]:
    return {
        "id": found.id,
        "state": BatchState(found.state),
        "size": found.size,
        "expected": found.expected,
        "closed": found.closed,
        "total": found.tasks,
        "completed": found.completed,
        "failed": found.failed,
        "outstanding": found.tasks - found.completed - found.failed,
        "deadline": _time(found.deadline),
        "created_at": format_timestamp(found.created_at),
        "finished_at": _time(found.finished_at),
        "event_id": found.event_id,
    }


def batch(found: store.Batch) -> contract.Batch:
    return contract.Batch(**_batch_fields(found))


def batch_detail(found: store.Batch, tasks: list[store.BatchTask]) -> contract.BatchDetail:
    return contract.BatchDetail(
        **_batch_fields(found),
        tasks=[
            contract.BatchMember(
                source=task.source,
                task_id=task.task_id,
                status=task.status,
                event_id=task.event_id,
                result_urls=list(task.result_urls),
                added_at=format_timestamp(task.added_at),
            )
            for task in tasks
        ],
    )
