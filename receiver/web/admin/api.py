"""The admin API: JSON under ``/api``, its routes and types declared in ``contract``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from receiver.config.settings import Settings
from receiver.errors import Conflict, Invalid, NotFound
from receiver.observability.metrics import Metrics
from receiver.operations import (
    declare_batch,
    destination_report,
    reconciler_report,
    replay_event,
    replay_matching,
    track,
)
from receiver.routing import Router
from receiver.states import DestinationState
from receiver.store import Administering, BatchQuery, DeliveryQuery, Receipt, Stored
from receiver.web.admin import answers
from receiver.web.admin.contract import (
    Batch,
    BatchBody,
    BatchDetail,
    BatchList,
    BatchPage,
    DeliveryList,
    DeliveryPage,
    DeliveryRetry,
    Destinations,
    DestinationStateChanged,
    EventDetail,
    EventList,
    EventPage,
    EventReplay,
    NewDelivery,
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
    SourceReconciliation,
    Task,
    TaskList,
    Tasks,
    TrackBody,
)
from receiver.web.admin.endpoints import OPERATIONS, Operation
from receiver.web.admin.queries import (
    delivery_query,
    event_query,
    read_body,
    read_params,
    rejected_query,
)
from receiver.web.rejected import retry, retry_all

JSON = "application/json"


class AdminAPI:
    def __init__(
        self,
        settings: Settings,
        store: Administering,
        router: Router,
        wake: Callable[[], None],
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._router = router
        self._wake = wake
        self._metrics = metrics

    def routes(self) -> list[BaseRoute]:
        return [
            Route(operation.path, self._endpoint(operation), methods=[operation.method])
            for operation in OPERATIONS
        ]

    def _endpoint(self, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        """The operation's handler, given its query parameters (and body) decoded and
        validated as the contract declares them; its answer is encoded the same way."""
        handler: Callable[..., Awaitable[Struct]] = getattr(self, operation.handler)

        async def endpoint(request: Request) -> Response:
            params = read_params(operation.params, request.query_params)
            if operation.body is None:
                answer = await handler(request, params)
            else:
                answer = await handler(
                    request, params, read_body(operation.body, await request.body())
                )
            return Response(answers.encode(answer), media_type=JSON)

        return endpoint

    async def list_events(self, request: Request, params: EventList) -> EventPage:
        query = event_query(params)
        found = await self._store.list_events(query)
        next_cursor = found[-1].id if len(found) == query.limit else None
        return EventPage([answers.event(e) for e in found], next_cursor)

    async def get_event(self, request: Request, params: Params) -> EventDetail:
        detail = await self._store.event_detail(request.path_params["event_id"])
        if detail is None:
            raise NotFound("no event with that id")
        return answers.event_detail(detail)

    async def replay_one(self, request: Request, params: Params, body: ReplayBody) -> Replayed:
        destination = self._destination(body)
        event = await self._store.get_event(request.path_params["event_id"])
        if event is None:
            raise NotFound("no event with that id")
        created = await replay_event(
            self._store,
            self._router,
            event,
            destination=destination,
            destinations=self._settings.destinations,
            new_id=body.new_id,
        )
        if not created:
            raise Invalid(
                "no route sends this event anywhere; name a destination", field="destination"
            )
        self._wake()
        return Replayed([NewDelivery(d, name) for d, name in created])

    async def replay_events(
        self, request: Request, params: EventReplay, body: ReplayBody
    ) -> ReplayedMany:
        query = event_query(params)
        destination = self._destination(body)
        events, deliveries = await replay_matching(
            self._store, self._router, query, destination=destination, new_id=body.new_id
        )
        self._wake()
        return ReplayedMany(events, deliveries)

    async def list_deliveries(self, request: Request, params: DeliveryList) -> DeliveryPage:
        query = delivery_query(params)
        found = await self._store.list_deliveries(query)
        next_cursor = found[-1].id if len(found) == query.limit else None
        return DeliveryPage([answers.delivery(d) for d in found], next_cursor)

    async def retry_one(self, request: Request, params: Params) -> Requeued:
        delivery_id = request.path_params["delivery_id"]
        if not await self._store.requeue(delivery_id=delivery_id):
            known = await self._store.list_deliveries(DeliveryQuery(delivery_id=delivery_id))
            if not known:
                raise NotFound("no delivery with that id")
            raise Conflict(f"only dead deliveries are retried; this one is {known[0].state}")
        self._wake()
        return Requeued(1)

    async def retry_deliveries(self, request: Request, params: DeliveryRetry) -> Requeued:
        count = await self._store.requeue(destination=params.destination, event_id=params.event)
        self._wake()
        return Requeued(count)

    async def list_destinations(self, request: Request, params: Params) -> Destinations:
        now, report = await destination_report(self._store, self._settings.destinations)
        return Destinations([answers.destination(s, now, target) for s, target in report])

    async def pause(self, request: Request, params: Params) -> DestinationStateChanged:
        return await self._set_state(request, DestinationState.PAUSED, "paused by an operator")

    async def resume(self, request: Request, params: Params) -> DestinationStateChanged:
        return await self._set_state(request, DestinationState.ACTIVE, None)

    async def _set_state(
        self, request: Request, state: DestinationState, reason: str | None
    ) -> DestinationStateChanged:
        name = request.path_params["name"]
        await self._store.sync_destinations(self._settings.destinations)
        if not await self._store.set_destination_state(name, state, reason):
            raise NotFound("no destination with that name")
        self._wake()
        return DestinationStateChanged(name, state)

    async def list_tasks(self, request: Request, params: TaskList) -> Tasks:
        tasks = await self._store.list_tasks(params.state, params.limit)
        return Tasks([answers.task(task) for task in tasks])

    async def track_task(self, request: Request, params: Params, body: TrackBody) -> Task:
        task = await track(
            self._store, self._settings.sources, body.source, body.task_id, body.business_id
        )
        self._wake()
        return answers.task(task)

    async def reconciler(self, request: Request, params: Params) -> Reconciler:
        report = await reconciler_report(self._store, self._settings.sources)
        return Reconciler([SourceReconciliation(**source) for source in report])

    async def list_rejected(self, request: Request, params: RejectedList) -> RejectedPage:
        query = rejected_query(params)
        found = await self._store.list_rejected(query)
        next_cursor = found[-1].id if len(found) == query.limit else None
        return RejectedPage([answers.rejected(r) for r in found], next_cursor)

    async def get_rejected(self, request: Request, params: Params) -> RejectedRequestDetail:
        found = await self._store.get_rejected(request.path_params["rejected_id"])
        if found is None:
            raise NotFound("no rejected request with that id")
        return answers.rejected_detail(found)

    async def retry_one_rejected(self, request: Request, params: Params) -> RejectedRequest:
        record = await retry(
            self._store,
            self._settings,
            self._router,
            request.path_params["rejected_id"],
            self._stored,
        )
        return answers.rejected(record)

    async def retry_rejected(self, request: Request, params: RejectedRetry) -> RetriedAll:
        outcomes = await retry_all(
            self._store, self._settings, self._router, params.source, self._stored
        )
        return RetriedAll(
            outcomes["accepted"], outcomes["duplicate"], outcomes["rejected"], outcomes["skipped"]
        )

    async def list_batches(self, request: Request, params: BatchList) -> BatchPage:
        query = BatchQuery(state=params.state, before=params.cursor, limit=params.limit)
        found = await self._store.list_batches(query)
        next_cursor = found[-1].id if len(found) == query.limit else None
        return BatchPage([answers.batch(b) for b in found], next_cursor)

    async def declare_batch(self, request: Request, params: Params, body: BatchBody) -> Batch:
        found = await declare_batch(
            self._store,
            self._router,
            self._settings.sources,
            body.id,
            [(task.source, task.task_id) for task in body.tasks],
            expected=body.expected,
            deadline=body.deadline,
            closed=body.closed,
        )
        self._wake()
        return answers.batch(found)

    async def get_batch(self, request: Request, params: Params) -> BatchDetail:
        found = await self._store.batch_detail(request.path_params["batch_id"])
        if found is None:
            raise NotFound("no batch with that id")
        return answers.batch_detail(*found)

    async def close_batch(self, request: Request, params: Params) -> Batch:
        found = await self._store.close_batch(
            request.path_params["batch_id"], self._router.destinations
        )
        if found is None:
            raise NotFound("no batch with that id")
        self._wake()
        return answers.batch(found)

    def _stored(self, receipt: Receipt, stored: Stored) -> None:
        """A retried rejected request was stored: count its new events, wake the worker."""
        if self._metrics is not None and stored.new_event_ids:
            new = set(stored.new_event_ids)
            self._metrics.stored(n.event.type for n in receipt.events if n.event.id in new)
        if stored.new_event_ids:
            self._wake()

    def _destination(self, body: ReplayBody) -> str | None:
        if body.destination is not None and body.destination not in self._settings.destinations:
            raise Invalid("no destination with that name", field="destination")
        return body.destination
