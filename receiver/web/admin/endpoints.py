"""The admin API's operations: each route, the ``AdminAPI`` method that answers it and the
structs of ``contract`` it takes and gives. The routes and ``/openapi.json`` are made from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from msgspec import Struct

from receiver.web.admin.contract import (
    Batch,
    BatchBody,
    BatchDetail,
    BatchList,
    BatchPage,
    Body,
    DeliveryList,
    DeliveryPage,
    DeliveryRetry,
    Destinations,
    DestinationStateChanged,
    EventDetail,
    EventList,
    EventPage,
    EventReplay,
    Params,
    Reconciler,
    RejectedList,
    RejectedPage,
    RejectedRequest,
    RejectedRequestDetail,
    RejectedRetry,
    ReplayBody,
    Replayed,
    ReplayedMany,
    Requeued,
    RetriedAll,
    Task,
    TaskList,
    Tasks,
    TrackBody,
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One admin endpoint: its route, the method of ``AdminAPI`` that answers, and its types."""

    method: Literal["GET", "POST"]
    path: str
    handler: str
    summary: str
    answer: type[Struct]
    errors: tuple[int, ...] = ()
    params: type[Params] = Params
    body: type[Body] | None = None
    body_required: bool = False

    def statuses(self) -> list[int]:
        """Its error statuses: the admin API's (401, 403), a body's (400, not JSON) and its own."""
        shared = (401, 403, 400) if self.body is not None else (401, 403)
        return sorted({*shared, *self.errors})


_REJECTED_ID = "/api/rejected/{rejected_id}"
# A batch id may hold "/" (a provider's label, a business id's part): the rest of the path is the
# id, except that POST .../close closes the batch before it. The close route is listed first to
# read so; Starlette would pick it anyway, as the GET route only partly matches a POST.
_BATCH_ID = "/api/batches/{batch_id:path}"

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/api/events",
        "list_events",
        "List events, newest first",
        EventPage,
        (422,),
        EventList,
    ),
    Operation(
        "POST",
        "/api/events/replay",
        "replay_events",
        "Replay every event matching the filters (at most 10,000)",
        ReplayedMany,
        (422,),
        EventReplay,
        ReplayBody,
    ),
    Operation(
        "GET",
        "/api/events/{event_id}",
        "get_event",
        "An event, its stored requests, deliveries and attempts",
        EventDetail,
        (404, 422),
    ),
    Operation(
        "POST",
        "/api/events/{event_id}/replay",
        "replay_one",
        "Route an event again and queue new deliveries",
        Replayed,
        (404, 422),
        body=ReplayBody,
    ),
    Operation(
        "GET",
        "/api/deliveries",
        "list_deliveries",
        "List deliveries, newest first",
        DeliveryPage,
        (422,),
        DeliveryList,
    ),
    Operation(
        "POST",
        "/api/deliveries/retry",
        "retry_deliveries",
        "Queue every dead delivery matching the filters again",
        Requeued,
        (422,),
        DeliveryRetry,
    ),
    Operation(
        "POST",
        "/api/deliveries/{delivery_id}/retry",
        "retry_one",
        "Queue a dead delivery again",
        Requeued,
        (404, 409, 422),
    ),
    Operation(
        "GET",
        "/api/destinations",
        "list_destinations",
        "Destinations: state, success rate over the last hour, queue",
        Destinations,
        (422,),
    ),
    Operation(
        "POST",
        "/api/destinations/{name}/pause",
        "pause",
        "Pause a destination",
        DestinationStateChanged,
        (404, 422),
    ),
    Operation(
        "POST",
        "/api/destinations/{name}/resume",
        "resume",
        "Resume a destination",
        DestinationStateChanged,
        (404, 422),
    ),
    Operation(
        "GET",
        "/api/tasks",
        "list_tasks",
        "Tasks tracked with the providers, most recently changed first",
        Tasks,
        (422,),
        TaskList,
    ),
    Operation(
        "POST",
        "/api/tasks",
        "track_task",
        "Track a task submitted to a provider, so its result is recovered if no callback comes",
        Task,
        (422,),
        body=TrackBody,
        body_required=True,
    ),
    Operation(
        "GET",
        "/api/reconciler",
        "reconciler",
        "Per source: reconciled or not, a rejected API key, tasks by state",
        Reconciler,
        (422,),
    ),
    Operation(
        "GET",
        "/api/rejected",
        "list_rejected",
        "List kept rejected requests, newest first",
        RejectedPage,
        (422,),
        RejectedList,
    ),
    Operation(
        "POST",
        "/api/rejected/retry",
        "retry_rejected",
        "Retry every kept rejected request a retry can run (at most 10,000)",
        RetriedAll,
        (422, 503),
        RejectedRetry,
    ),
    Operation(
        "GET",
        _REJECTED_ID,
        "get_rejected",
        "A kept rejected request, with its headers and body",
        RejectedRequestDetail,
        (404, 422),
    ),
    Operation(
        "POST",
        _REJECTED_ID + "/retry",
        "retry_one_rejected",
        "Run a kept rejected request through ingest again: the record says what it came to "
        "(outcome, event_ids, or retry_error when it is refused again)",
        RejectedRequest,
        (404, 409, 422, 503),
    ),
    Operation(
        "GET",
        "/api/batches",
        "list_batches",
        "List batches of tasks with their progress, newest first",
        BatchPage,
        (422,),
        BatchList,
    ),
    Operation(
        "POST",
        "/api/batches",
        "declare_batch",
        "Create a batch of tasks, or add tasks, a size or a deadline to an open one",
        Batch,
        (409, 422),
        body=BatchBody,
        body_required=True,
    ),
    Operation(
        "POST",
        _BATCH_ID + "/close",
        "close_batch",
        "Close a batch: the tasks it has are all of it (it completes once they are final)",
        Batch,
        (404, 422),
    ),
    Operation(
        "GET",
        _BATCH_ID,
        "get_batch",
        "A batch, its progress and each of its tasks",
        BatchDetail,
        (404, 422),
    ),
)

#: What each path parameter is.
PATH_PARAMETERS = {
    "event_id": "Event id.",
    "batch_id": "Batch id. It may contain /, sent as it is or as %2F (the same). A POST "
    "ending in /close closes the batch named before it.",
    "delivery_id": "Delivery id.",
    "name": "Destination name.",
    "rejected_id": "Rejected request id.",
    "source": "A configured source name.",
    "token": "The source's URL token (photohook url SOURCE).",
}
