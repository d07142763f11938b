"""What storing a group commit's receipts writes: decided here once, written by each engine.

Given the events already stored for their tasks, each receipt's events are sorted into new
and duplicate; new ones get their deliveries (pending, or skipped when they would move their task
backwards, or confirming while the provider is asked), and the task tracking they call for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from receiver.states import DeliveryState
from receiver.store import kept_files, rows
from receiver.store.batches import FINAL
from receiver.store.outbox import DeliveryRow, new_delivery
from receiver.store.records import BatchRule, NewEvent, Receipt, Stored

SUPERSEDED = "superseded: the task had already reached a later status"

#: (task_id, source, status): the idempotency key.
Key = tuple[str, str, str]
#: (task_id, source)
TaskKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class TaskChange:
    """What a new event does to its task's tracking."""

    kind: str  # "seen" (not final: check later), "confirming", "done"
    source: str
    task_id: str
    business_id: str | None
    event_id: str
    next_check_at: float
    expires_at: float


@dataclass
class BatchPlan:
    """The rows to write, and what to answer each receipt."""

    receipts: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    deliveries: list[DeliveryRow] = field(default_factory=list)
    files: list[tuple[Any, ...]] = field(default_factory=list)  # result files to keep
    tasks: list[TaskChange] = field(default_factory=list)
    duplicates: list[tuple[str]] = field(default_factory=list)  # event ids resent
    #: (batch id, source, task id, rule): tasks joining batches by their source's rule.
    joins: list[tuple[str, str, str, BatchRule]] = field(default_factory=list)
    #: (source, task id) of the new final events: their batches may be complete.
    finals: set[tuple[str, str]] = field(default_factory=set)
    results: list[Stored] = field(default_factory=list)


def plan(
    receipts: Iterable[Receipt],
    known: dict[Key, tuple[str, bytes]],
    ranks: dict[TaskKey, int],
    now: float,
) -> BatchPlan:
    """Decide what the batch writes. ``known`` maps stored keys to (event id, body hash of its
    receipt) and ``ranks`` the highest status rank each task reached; both are updated as the
    batch's own events are planned, so duplicates within one batch are caught too."""
    batch = BatchPlan()
    for receipt in receipts:
        event_ids, new_ids, body_differs, pending, files = [], [], False, 0, 0
        for new in receipt.events:
            event = new.event
            key = (event.task_id, event.source, event.status)
            found = known.get(key)
            if found is not None:
                event_ids.append(found[0])
                batch.duplicates.append((found[0],))
                body_differs |= found[1] != receipt.body_sha256
                continue
            known[key] = (event.id, receipt.body_sha256)
            batch.events.append(rows.event_row(new, receipt.id))
            new_ids.append(event.id)
            event_ids.append(event.id)
            task = (event.task_id, event.source)
            superseded = new.rank < ranks.get(task, 0)
            ranks[task] = max(new.rank, ranks.get(task, 0))
            if new.batching is not None:
                batch.joins += [
                    (batch_id, event.source, event.task_id, new.batching)
                    for batch_id in new.batching.batch_ids(event)
                ]
            if event.status in FINAL:
                batch.finals.add((event.source, event.task_id))
            change = _task_change(new, now)
            if change is not None:
                batch.tasks.append(change)
            confirming = change is not None and change.kind == "confirming"
            if new.keep:
                batch.files.extend(kept_files.new_rows(event, now))
                files += len(event.result_urls)
            state = (
                DeliveryState.SKIPPED
                if superseded
                else DeliveryState.CONFIRMING
                if confirming
                else DeliveryState.KEEPING
                if new.keep
                else DeliveryState.PENDING
            )
            for destination in new.destinations:
                batch.deliveries.append(
                    new_delivery(
                        event.id,
                        destination,
                        event.source,
                        event.task_id,
                        now,
                        state=state,
                        last_error=SUPERSEDED if superseded else None,
                    )
                )
                pending += state == DeliveryState.PENDING
        if new_ids or body_differs:
            batch.receipts.append(rows.receipt_row(receipt, event_ids, duplicate=not new_ids))
        batch.results.append(Stored(tuple(event_ids), tuple(new_ids), pending, files))
    return batch


def _task_change(new: NewEvent, now: float) -> TaskChange | None:
    tracking = new.tracking
    if tracking is None:
        return None
    event = new.event
    if not new.terminal:
        kind, next_check = "seen", now + tracking.after
    elif tracking.confirm and event.via == "callback":
        kind, next_check = "confirming", now
    else:
        kind, next_check = "done", now
    return TaskChange(
        kind,
        event.source,
        event.task_id,
        event.business_id,
        event.id,
        next_check,
        now + tracking.lasting,
    )
