"""Operator actions shared by the command line, the admin API and the dashboard."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from receiver.config.durations import parse_duration
from receiver.config.sources import SourceConfig
from receiver.destinations import Destination
from receiver.errors import Invalid
from receiver.events import Event
from receiver.reconciler import key_fingerprint, rejected_key
from receiver.routing import Router
from receiver.store import (
    TASK_STATES,
    Actions,
    Batch,
    BatchDeclaration,
    Batches,
    DestinationReport,
    DestinationStatus,
    EventQuery,
    ReconcilerReport,
    Replaying,
    Task,
    TaskQueue,
)

#: The most events one bulk replay touches.
BULK_LIMIT = 10_000
#: The most tasks one declaration of a batch names.
BATCH_TASKS_LIMIT = 10_000
#: The largest size a batch may be given.
BATCH_SIZE_LIMIT = 1_000_000
#: How far ahead a batch's deadline may be, in seconds (a year).
DEADLINE_LIMIT = 366 * 86400.0


async def replay_event(
    store: Actions,
    router: Router,
    event: Event,
    *,
    destination: str | None = None,
    destinations: Collection[str] = (),
    new_id: bool = False,
) -> list[tuple[str, str]]:
    """Queue new deliveries of ``event``: to ``destination``, or wherever routes send it now.

    They keep the event's ``webhook-id``, so that a receiver that deduplicates drops what it has
    processed (as Stripe and Svix replay); ``new_id`` sends them as new messages instead.
    Returns (delivery id, destination) pairs; empty when no route sends the event anywhere.
    """
    targets = (destination,) if destination else router.destinations(event)
    if not targets:
        return []
    await store.sync_destinations(destinations or targets)
    created = await store.add_deliveries(event.id, targets, new_message=new_id)
    return list(zip(created, targets, strict=True))


async def replay_matching(
    store: Replaying,
    router: Router,
    query: EventQuery,
    *,
    destination: str | None = None,
    new_id: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Replay every event ``query`` matches (at most ``BULK_LIMIT``): (events, deliveries).
    ``progress`` is given how many events each page replayed."""
    events = deliveries = 0
    page = replace(query, limit=min(query.limit, 500))
    while events < BULK_LIMIT:
        found = await store.list_events(page)
        for event in found:
            deliveries += len(
                await replay_event(store, router, event, destination=destination, new_id=new_id)
            )
        events += len(found)
        if progress is not None:
            progress(len(found))
        if len(found) < page.limit:
            break
        page = replace(page, before=found[-1].id)
    return events, deliveries


async def destination_report(
    store: DestinationReport, destinations: Mapping[str, Destination]
) -> tuple[float, list[tuple[DestinationStatus, str | None]]]:
    """When it was taken, and each destination's state and health with its target (a URL
    without its query; None when it is no longer configured)."""
    await store.sync_destinations(destinations)
    now = time.time()
    report = []
    for status in await store.destination_statuses(now):
        configured = destinations.get(status.name)
        report.append((status, configured.target if configured else None))
    return now, report


async def track(
    store: TaskQueue,
    sources: Mapping[str, SourceConfig],
    source: str,
    task_id: str,
    business_id: str | None,
) -> Task:
    """Register a task so that its result is recovered even if every callback is lost."""
    config = sources.get(source)
    if config is None:
        raise Invalid("no source with that name", field="source")
    how = config.tracking
    if how is None:
        raise Invalid("this source has no api_key, so it is not reconciled", field="source")
    if not task_id or len(task_id) > 256:
        raise Invalid("task_id must be 1 to 256 characters", field="task_id")
    return await store.track_task(source, task_id, business_id, how, time.time())


async def reconciler_report(
    store: ReconcilerReport, sources: Mapping[str, SourceConfig]
) -> list[dict[str, Any]]:
    """Per source: whether it is reconciled, whether its key was rejected, its tasks by state."""
    summary = await store.task_summary()
    report = []
    for name, source in sources.items():
        rejected = False
        if source.api_key is not None:
            rejected = await store.get_meta(rejected_key(name)) == key_fingerprint(source)
        found = summary.get(name, {"counts": {}, "last_error": None})
        report.append(
            {
                "source": name,
                "reconciled": source.tracking is not None,
                "confirm": source.confirm,
                "key_rejected": rejected,
                "tasks": {state: found["counts"].get(state, 0) for state in TASK_STATES},
                "last_error": found["last_error"],
            }
        )
    return report


async def declare_batch(
    store: Batches,
    router: Router,
    sources: Collection[str],
    batch_id: str,
    tasks: Sequence[tuple[str, str]] = (),
    *,
    expected: int | None = None,
    deadline: str | float | None = None,
    closed: bool | None = None,
) -> Batch:
    """Create a batch of tasks or extend an open one (see :meth:`Batches.declare_batch`),
    checking what it is given; ``deadline`` is an RFC 3339 time, or a duration from now."""
    if not batch_id or len(batch_id) > 256 or "\x00" in batch_id:
        raise Invalid("id must be 1 to 256 characters, with no NUL", field="id")
    if len(tasks) > BATCH_TASKS_LIMIT:
        raise Invalid(f"at most {BATCH_TASKS_LIMIT} tasks at a time", field="tasks")
    for index, (source, task_id) in enumerate(tasks):
        if source not in sources:
            raise Invalid(
                f"no source named {source!r} (have: {', '.join(sources)})",
                field=f"tasks[{index}].source",
            )
        if not task_id or len(task_id) > 256 or "\x00" in task_id:
            raise Invalid(
                "task_id must be 1 to 256 characters, with no NUL", field=f"tasks[{index}].task_id"
            )
    if expected is not None and not 1 <= expected <= BATCH_SIZE_LIMIT:
        raise Invalid(f"expected must be 1 to {BATCH_SIZE_LIMIT}", field="expected")
    declaration = BatchDeclaration(
        batch_id,
        tuple(dict.fromkeys(tasks)),
        expected,
        None if deadline is None else parse_deadline(deadline, time.time()),
        closed,
    )
    return await store.declare_batch(declaration, router.destinations)


def parse_deadline(value: str | float, now: float) -> float:
    """A deadline as Unix seconds: an RFC 3339 time, or a duration from ``now`` (``"2h"``,
    seconds); from now to a year ahead."""
    found = _deadline(value, now)
    if not now - 1 <= found <= now + DEADLINE_LIMIT:
        raise Invalid("deadline: must be from now to a year ahead", field="deadline")
    return found


def _deadline(value: str | float, now: float) -> float:
    if isinstance(value, str) and "T" in value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise Invalid(
                f"deadline: expected an RFC 3339 time with its offset, or a duration;"
                f" got {value!r}",
                field="deadline",
            )
        return moment.timestamp()
    try:
        return now + parse_duration(value)
    except ValueError as exc:
        raise Invalid(f"deadline: {exc} (or an RFC 3339 time)", field="deadline") from None
