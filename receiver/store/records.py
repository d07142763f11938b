"""The records the store takes and gives.

Over 400 lines on purpose: declarations only (27 records), each the type of a role's argument or
answer in ``roles``; one file, so that the store's whole vocabulary is read in one place."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from msgspec import Struct

from receiver.events import Event

#: The destinations of an event (a router's answer): how a write routes the batch events it
#: stores.
Route = Callable[[Event], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Tracking:
    """How a source's tasks are reconciled: first check ``after`` seconds after the last callback,
    give up ``lasting`` seconds after the first; ``confirm`` terminal callbacks first."""

    after: float
    lasting: float
    confirm: bool = False


@dataclass(frozen=True, slots=True)
class BatchRule:
    """How a source's tasks join batches by themselves: ``key`` matched against the business id
    (its first group names the batch, else the whole match), or each of the task's ``labels``
    naming one; such a batch is ``expected`` tasks, and expires ``deadline`` seconds after its
    first task came (None: no size, no deadline, until it is declared or closed)."""

    key: re.Pattern[str] | None = None
    labels: bool = False
    expected: int | None = None
    deadline: float | None = None

    def batch_ids(self, event: Event) -> tuple[str, ...]:
        """The batches ``event``'s task belongs to by this rule."""
        found: dict[str, None] = {}
        if self.key is not None and event.business_id:
            match = self.key.search(event.business_id)
            if match is not None:
                name = match.group(1) if self.key.groups else match.group(0)
                if name:
                    found[name] = None
        if self.labels:
            found.update(dict.fromkeys(label for label in event.labels if label))
        return tuple(found)


# NewEvent, Receipt and Stored, made for every callback, are msgspec structs: frozen too, and
# made in C. As frozen dataclasses they cost 11k, 23k and 7k instructions each to make (an
# object.__setattr__ call per field), a tenth of a callback's under callgrind.


class NewEvent(Struct, frozen=True):
    """An event to store, with how far it takes its task and where routes send it."""

    event: Event
    rank: int = 0
    destinations: tuple[str, ...] = ()
    terminal: bool = False
    tracking: Tracking | None = None  # None: the source is not reconciled
    keep: bool = False  # its result files are kept before its deliveries go out
    batching: BatchRule | None = None  # None: its task joins no batch by itself


class Receipt(Struct, frozen=True):
    """A callback as received, with its parsed events, stored in one transaction."""

    id: str
    source: str
    received_at: datetime
    peer: str | None
    client: str | None
    headers: bytes  # a JSON array of [name, value] pairs, secrets redacted
    body: bytes
    body_sha256: bytes
    events: tuple[NewEvent, ...]
    via: str = "callback"
    #: The W3C ``traceparent`` of the callback's span, for the delivery attempts' spans.
    trace_context: str | None = None
    #: Routes the batch events its events finish (None: they are stored, sent nowhere).
    route: Route | None = None


class Stored(Struct, frozen=True):
    """What storing a receipt did: the ids of its events, which are new, how many deliveries
    are due, how many result files are to be kept."""

    event_ids: tuple[str, ...]
    new_event_ids: tuple[str, ...]
    deliveries: int = 0
    files: int = 0
    #: Batch events its write stored (they finished batches; their deliveries are due too).
    batch_events: int = 0

    @property
    def duplicate(self) -> bool:
        return not self.new_event_ids


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for listing events, newest first; ``before`` is the cursor (an event id)."""

    source: str | None = None
    type: str | None = None
    status: str | None = None
    task_id: str | None = None
    business_id: str | None = None
    label: str | None = None
    flagged: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    dead_delivery: bool = False  # only events with a dead delivery
    before: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Count:
    """How many of something (callbacks, attempts) one source or destination had in the time
    bucket starting at ``start`` (Unix seconds), by outcome."""

    start: float
    name: str
    outcome: str
    count: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one destination."""

    id: str
    event_id: str
    destination: str
    state: str
    attempts: int
    tries: int
    next_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    created_at: float
    updated_at: float
    message_id: str | None = None  # the webhook-id of a replay sent as a new message


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """Filters for listing deliveries: dead ones first, then newest first."""

    state: str | None = None
    event_id: str | None = None
    destination: str | None = None
    delivery_id: str | None = None
    before: str | None = None  # the cursor: a delivery id
    dead_first: bool = True  # False: strictly newest first, as cursor pagination needs
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery leased to a worker, with its event."""

    delivery: Delivery
    event: Event
    trace_context: str | None = None  #: the callback's ``traceparent``, when it was traced


@dataclass(frozen=True, slots=True)
class Attempt:
    """What happened when a delivery was tried once."""

    started_at: float
    duration_ms: float
    ok: bool
    status_code: int | None = None
    error: str | None = None
    response_headers: bytes | None = None  # JSON [[name, value], ...]
    response_body: bytes | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """An attempt, and the delivery's state after it."""

    delivery_id: str
    worker_id: str
    attempt: Attempt
    state: str
    next_attempt_at: float | None = None
    disable_destination: str | None = None  # the reason, when the destination said 410 Gone


@dataclass(frozen=True, slots=True)
class DestinationStatus:
    name: str
    state: str
    reason: str | None
    attempts_last_hour: int
    successes_last_hour: int
    last_error: str | None
    queue_depth: int
    oldest_pending_at: float | None
    dead: int = 0


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """A recorded attempt, as the admin API and the dashboard show it."""

    number: int
    started_at: float
    duration_ms: float
    ok: bool
    status_code: int | None
    error: str | None
    response_headers: list[list[str]] | None
    response_body: str | None


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """A stored request (headers redacted), as the admin API and the dashboard show it."""

    id: str
    source: str
    via: str
    received_at: str
    peer: str | None
    client: str | None
    headers: list[list[str]]
    body: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class EventDetail:
    """An event with everything recorded about it."""

    event: Event
    duplicates: int
    receipts: list[ReceiptRecord]
    deliveries: list[tuple[Delivery, list[AttemptRecord]]]
    files: list[KeptFile] = field(default_factory=list)  # its result files, when kept


@dataclass(frozen=True, slots=True)
class Pruned:
    """What pruning deleted (or, in a dry run, would delete)."""

    events: int = 0
    receipts: int = 0
    deliveries: int = 0
    attempts: int = 0
    tasks: int = 0  # tracked tasks in a final state
    rejected: int = 0  # kept rejected requests
    files: int = 0  # kept result files of the pruned events (their copies deleted next)
    batches: int = 0  # finished batches whose event was pruned

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(
            self.events + other.events,
            self.receipts + other.receipts,
            self.deliveries + other.deliveries,
            self.attempts + other.attempts,
            self.tasks + other.tasks,
            self.rejected + other.rejected,
            self.files + other.files,
            self.batches + other.batches,
        )


@dataclass(frozen=True, slots=True)
class KeptFile:
    """A result file of an event, to keep or kept in the result store."""

    event_id: str
    position: int
    url: str
    state: str
    attempts: int = 0
    next_attempt_at: float = 0.0
    storage_key: str | None = None
    size: int | None = None
    content_type: str | None = None
    sha256: str | None = None
    last_error: str | None = None
    kept_at: float | None = None


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What one fetch of a leased file came to: kept (with what), tried again at
    ``next_attempt_at``, or missing."""

    event_id: str
    position: int
    worker_id: str
    state: str
    next_attempt_at: float | None = None
    storage_key: str | None = None
    size: int | None = None
    content_type: str | None = None
    sha256: str | None = None
    error: str | None = None
    #: Whether the try counts against the file's retry schedule; not when photohook's own
    #: result store failed, which is no reason to give up on what the provider serves.
    counted: bool = True


@dataclass(frozen=True, slots=True)
class Task:
    """A task photohook tracks with the provider."""

    source: str
    task_id: str
    business_id: str | None
    state: str
    event_id: str | None
    created_at: float
    last_seen_at: float
    expires_at: float
    next_check_at: float
    checks: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class BatchDeclaration:
    """A batch declared by a caller: created, or extended with ``tasks`` ((source, task id)
    pairs), given its size ``expected`` or a ``deadline`` (Unix seconds). ``closed``: its tasks
    are all of it (None: closed when it is created with tasks and no ``expected``)."""

    id: str
    tasks: tuple[tuple[str, str], ...] = ()
    expected: int | None = None
    deadline: float | None = None
    closed: bool | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch and how far it is: ``tasks`` known, of which ``completed`` and ``failed``;
    ``size``, when known (the tasks it has once closed, else ``expected``)."""

    id: str
    state: str
    expected: int | None
    closed: bool
    deadline: float | None
    created_at: float
    updated_at: float
    finished_at: float | None
    event_id: str | None
    tasks: int
    completed: int
    failed: int

    @property
    def size(self) -> int | None:
        return self.tasks if self.closed else self.expected


@dataclass(frozen=True, slots=True)
class BatchTask:
    """A task of a batch, and its final status (None while it has none)."""

    source: str
    task_id: str
    status: str | None
    event_id: str | None
    added_at: float
    result_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchQuery:
    """Filters for listing batches, newest first; ``before`` is the cursor (a batch id)."""

    state: str | None = None
    before: str | None = None
    limit: int = 50


#: What became of a retried rejected request.
RETRY_OUTCOMES = ("accepted", "duplicate", "rejected")


@dataclass(frozen=True, slots=True)
class Rejection:
    """An authenticated callback refused for its content, to keep (at most ``keep_at_most`` of
    its source's)."""

    id: str
    source: str
    received_at: datetime
    peer: str | None
    client: str | None
    headers: bytes  # a JSON array of [name, value] pairs, secrets redacted
    body: bytes | None  # None: not read whole (413)
    status: int
    code: str
    message: str
    field: str | None
    keep_at_most: int


@dataclass(frozen=True, slots=True)
class RejectedQuery:
    """Filters for listing kept rejected requests, newest first; ``before`` is the cursor."""

    source: str | None = None
    #: Only those a retry can run: not accepted yet (never retried, or still rejected), with
    #: their body kept.
    retryable: bool = False
    before: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class RejectedRequest:
    """A kept rejected request (headers redacted), and what its last retry came to."""

    id: str
    source: str
    received_at: str
    peer: str | None
    client: str | None
    headers: list[list[str]]
    body: bytes | None
    status: int
    code: str
    message: str
    field: str | None
    retries: int
    retried_at: str | None
    outcome: str | None
    retry_error: dict[str, Any] | None
    event_ids: list[str]

    def error(self) -> dict[str, Any]:
        """The refusal that counts now: the last retry's, else the original answer's."""
        if self.retry_error is not None:
            return self.retry_error
        return {"status": self.status} | self._answer()

    def _answer(self) -> dict[str, Any]:
        """The error body the original answer gave."""
        return {"code": self.code, "message": self.message} | (
            {"field": self.field} if self.field is not None else {}
        )
