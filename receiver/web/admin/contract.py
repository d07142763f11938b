"""The admin API's contract, written once: its query parameters, bodies and answers as typed
structs (``endpoints`` says which operation takes and gives which). Validation (``queries``),
serialization (``answers``) and ``/openapi.json`` (``openapi``) are derived from them.

Over 400 lines on purpose: declarations only, one struct per shape of the API, kept in one file
so that the whole contract reads as one document, as the OpenAPI document made from it does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from receiver.sources import KINDS
from receiver.states import BatchState, DeliveryState, DestinationState, KeptState, TaskState
from receiver.store.records import RETRY_OUTCOMES

MAX_LIMIT = 500
#: Every status a provider's events can have, from the providers' registry, and a batch's.
STATUSES = tuple(
    sorted({status for kind in KINDS.values() for status in kind.statuses} | {"expired"})
)

if TYPE_CHECKING:
    Kind = str
    Status = str
    RetryOutcome = str
    Via = str
else:  # the choices come from the registries, so the document cannot fall behind the code
    Kind = Literal[(*KINDS, "batch")]
    Status = Literal[STATUSES]
    RetryOutcome = Literal[RETRY_OUTCOMES]
    Via = Literal["callback", "poll", "batch"]

Time = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
Text = Annotated[str, Meta(max_length=256)]
Flag = Literal["true", "false"]
Limit = Annotated[int, Meta(ge=1, le=MAX_LIMIT, description="Items per page.")]
Cursor = Annotated[Text | None, Meta(description="`next_cursor` of the previous page.")]
Headers = list[list[str]]


class Params(Struct, forbid_unknown_fields=True, kw_only=True):
    """Query parameters; each field is one, and none other is accepted."""


# -- query parameters --------------------------------------------------------------------------


class EventFilters(Params):
    source: Annotated[Text | None, Meta(description="Source name.")] = None
    type: Annotated[Text | None, Meta(description="Event type, e.g. fotor.task.completed.")] = None
    status: Annotated[Status | None, Meta(description="Status.")] = None
    task_id: Annotated[Text | None, Meta(description="Fotor taskId or Crop.photo job_id.")] = None
    business_id: Annotated[Text | None, Meta(description="Fotor businessId.")] = None
    label: Annotated[Text | None, Meta(description="One of the event's labels.")] = None
    flagged: Annotated[Flag | None, Meta(description="Flagged as sensitive.")] = None
    since: Annotated[Time | None, Meta(description="Received at or after (RFC 3339).")] = None
    until: Annotated[Time | None, Meta(description="Received before (RFC 3339).")] = None


class EventList(EventFilters):
    limit: Limit = 50
    cursor: Cursor = None


class EventReplay(EventFilters):
    limit: Limit = MAX_LIMIT


class DeliveryFilters(Params):
    destination: Annotated[Text | None, Meta(description="Destination name.")] = None
    event: Annotated[Text | None, Meta(description="Event id.")] = None


class DeliveryList(DeliveryFilters):
    state: Annotated[DeliveryState | None, Meta(description="Delivery state.")] = None
    limit: Limit = 100
    cursor: Cursor = None


class DeliveryRetry(DeliveryFilters):
    state: Annotated[Literal["dead"] | None, Meta(description="Only dead ones are retried.")] = None


class TaskList(Params):
    state: Annotated[TaskState | None, Meta(description="Task state.")] = None
    limit: Limit = 100


class RejectedList(Params):
    source: Annotated[Text | None, Meta(description="Source name.")] = None
    retryable: Annotated[
        Flag | None,
        Meta(
            description="true: only those a retry can run: not accepted yet (never retried, "
            "or refused again), with their body kept."
        ),
    ] = None
    limit: Limit = 50
    cursor: Cursor = None


class BatchList(Params):
    state: Annotated[BatchState | None, Meta(description="Batch state.")] = None
    limit: Limit = 50
    cursor: Cursor = None


class RejectedRetry(Params):
    source: Annotated[Text | None, Meta(description="Only this source's.")] = None


# -- bodies ------------------------------------------------------------------------------------


class Body(Struct, forbid_unknown_fields=True, kw_only=True):
    """A JSON object body; each field is one, and none other is accepted."""


class ReplayBody(Body):
    destination: Annotated[str | None, Meta(description="Only to this destination.")] = None
    new_id: Annotated[
        bool,
        Meta(
            description="Send as a new message, under a new webhook-id, for a receiver that must "
            "process it again (by default the event id is kept, and a receiver that deduplicates "
            "drops the replay)."
        ),
    ] = False


class TrackBody(Body):
    source: Annotated[str, Meta(min_length=1)]
    task_id: Annotated[str, Meta(min_length=1, max_length=256)]
    business_id: str | None = None


class BatchTaskRef(Body):
    source: Annotated[str, Meta(min_length=1, description="A configured source name.")]
    task_id: Annotated[
        str, Meta(min_length=1, max_length=256, description="Fotor taskId or Crop.photo job_id.")
    ]


class BatchBody(Body):
    id: Annotated[str, Meta(min_length=1, max_length=256, description="The batch's id.")]
    tasks: Annotated[
        list[BatchTaskRef],
        Meta(max_length=10_000, description="Tasks to add (at most 10,000 at a time)."),
    ] = []
    expected: Annotated[
        Annotated[int, Meta(ge=1, le=1_000_000)] | None,
        Meta(description="Its size: complete once this many tasks are final."),
    ] = None
    deadline: Annotated[
        str | float | None,
        Meta(
            description="When it expires if tasks are still outstanding: an RFC 3339 time, or "
            "a duration from now ('2h', or seconds)."
        ),
    ] = None
    closed: Annotated[
        bool | None,
        Meta(
            description="true: the tasks it has are all of it. By default a batch created with "
            "tasks and no expected is closed; give false to add more later."
        ),
    ] = None


# -- answers -----------------------------------------------------------------------------------


class ErrorDetail(Struct):
    code: str
    message: str
    field: str | UnsetType = UNSET


class Error(Struct):
    """The JSON error shape of every 4xx and 5xx answer."""

    ok: Annotated[bool, Meta(extra_json_schema={"const": False})]
    error: ErrorDetail


class Accepted(Struct):
    """A callback stored durably (or a duplicate of one stored before)."""

    ok: Annotated[bool, Meta(extra_json_schema={"const": True})]
    event_ids: list[str]
    duplicate: bool


class Ok(Struct):
    ok: Annotated[bool, Meta(extra_json_schema={"const": True})]


class KeptResult(Struct):
    """A result file photohook kept in its result store (``keep_results``)."""

    url: Annotated[str, Meta(description="The provider's URL (often temporary).")]
    kept_url: Annotated[
        str | None,
        Meta(
            description="A stable URL of the kept copy, valid for [results] link_lifetime; "
            "null when missing."
        ),
    ]
    status: Annotated[
        Literal["kept", "missing"],
        Meta(description="kept, or missing: not fetched within the retry schedule."),
    ]
    size: int | None
    content_type: str | None
    sha256: Annotated[str | None, Meta(description="Hex SHA-256 of the kept bytes.")]
    error: Annotated[str | None, Meta(description="Why a missing file could not be kept.")]


class Event(Struct):
    """A normalized event, as delivered and listed."""

    id: str
    source: str
    kind: Kind
    type: str
    task_id: str
    task_type: str
    status: str
    business_id: str | None
    labels: list[str]
    result_urls: list[str]
    flagged: bool
    received_at: Time
    via: Via
    payload: dict[str, Any]
    kept_results: Annotated[
        list[KeptResult] | UnsetType,
        Meta(
            description="Delivered only for events whose result files were kept, in the "
            "order of result_urls."
        ),
    ] = UNSET


class EventPage(Struct):
    items: list[Event]
    next_cursor: str | None


class Delivery(Struct):
    id: str
    event_id: str
    destination: str
    state: DeliveryState
    attempts: int
    next_attempt_at: Time | None
    last_status: int | None
    last_error: str | None
    created_at: Time
    updated_at: Time


class DeliveryPage(Struct):
    items: list[Delivery]
    next_cursor: str | None


class Attempt(Struct):
    number: int
    started_at: Time
    duration_ms: float
    ok: bool
    status_code: int | None
    error: str | None
    response_headers: Headers | None
    response_body: str | None


class DeliveryHistory(Delivery):
    """A delivery with each of its attempts."""

    history: list[Attempt]


class Request(Struct):
    """A stored callback; secret headers are redacted."""

    id: str
    source: str
    via: str
    received_at: Time
    peer: str | None
    client: str | None
    headers: Headers
    body: str
    duplicate: bool


class KeptFile(Struct):
    """Where keeping one of an event's result files stands (``keep_results``)."""

    position: Annotated[int, Meta(description="Its index in the event's result_urls.")]
    url: str
    state: KeptState
    attempts: int
    next_attempt_at: Annotated[
        Time | None, Meta(description="When a waiting file is fetched again.")
    ]
    size: int | None
    content_type: str | None
    sha256: str | None
    error: Annotated[str | None, Meta(description="Why the last fetch failed.")]
    kept_at: Time | None


class EventDetail(Struct):
    event: Event
    duplicates: int
    request: Request | None
    other_requests: list[Request]
    deliveries: list[DeliveryHistory]
    files: Annotated[
        list[KeptFile], Meta(description="Its result files, when its source or a route keeps them.")
    ]


class NewDelivery(Struct):
    id: str
    destination: str


class Replayed(Struct):
    deliveries: list[NewDelivery]


class ReplayedMany(Struct):
    events: int
    deliveries: int


class Requeued(Struct):
    requeued: int


class Destination(Struct):
    name: str
    state: DestinationState
    reason: str | None
    success_rate: Annotated[float, Meta(ge=0, le=1)] | None
    attempts_last_hour: int
    last_error: str | None
    queue_depth: int
    dead: int
    oldest_pending_age: float | None
    target: str | None


class Destinations(Struct):
    items: list[Destination]


class DestinationStateChanged(Struct):
    name: str
    state: DestinationState


class Task(Struct):
    source: str
    task_id: str
    business_id: str | None
    state: TaskState
    event_id: str | None
    created_at: Time
    last_seen_at: Time
    next_check_at: Time | None
    checks: int
    last_error: str | None


class Tasks(Struct):
    items: list[Task]


class SourceReconciliation(Struct):
    source: str
    reconciled: bool
    confirm: bool
    key_rejected: bool
    tasks: dict[str, int]
    last_error: str | None


class Reconciler(Struct):
    sources: list[SourceReconciliation]


class RetryError(Struct):
    """Why the last retry was refused."""

    status: int
    code: str
    message: str
    field: str | UnsetType = UNSET


class RejectedRequest(Struct):
    """An authenticated callback refused for its content, kept to be retried."""

    id: str
    source: str
    received_at: Time
    status: Annotated[int, Meta(description="The answer it was given.")]
    error: ErrorDetail
    body_kept: Annotated[
        bool,
        Meta(description="False when the body was not read whole (413): it cannot be retried."),
    ]
    retries: int
    retried_at: Time | None
    outcome: Annotated[RetryOutcome | None, Meta(description="What the last retry came to.")]
    retry_error: RetryError | None
    event_ids: list[str]


class RejectedRequestDetail(RejectedRequest):
    """With the request as received; secret headers are redacted."""

    peer: str | None
    client: str | None
    headers: Headers
    body: str | None


class RejectedPage(Struct):
    items: list[RejectedRequest]
    next_cursor: str | None


class RetriedAll(Struct):
    accepted: int
    duplicate: int
    rejected: int
    skipped: Annotated[int, Meta(description="Not run: the source is gone.")]


class Batch(Struct):
    """A batch of tasks and how far it is."""

    id: str
    state: BatchState
    size: Annotated[
        int | None,
        Meta(description="Once closed its tasks, else expected; null while not known."),
    ]
    expected: int | None
    closed: bool
    total: Annotated[int, Meta(description="Tasks known so far.")]
    completed: int
    failed: int
    outstanding: Annotated[int, Meta(description="Tasks known with no final status yet.")]
    deadline: Time | None
    created_at: Time
    finished_at: Time | None
    event_id: Annotated[str | None, Meta(description="Its batch.completed or batch.expired.")]


class BatchPage(Struct):
    items: list[Batch]
    next_cursor: str | None


class BatchMember(Struct):
    source: str
    task_id: str
    status: Annotated[str | None, Meta(description="Its first final status; null: none yet.")]
    event_id: str | None
    result_urls: list[str]
    added_at: Time


class BatchDetail(Batch):
    """A batch with each of its tasks."""

    tasks: list[BatchMember]
