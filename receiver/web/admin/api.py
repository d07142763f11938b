"""The admin API: JSON under ``/api``, described by ``/openapi.json``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from receiver.config.settings import Settings
from receiver.errors import Conflict, Invalid, InvalidJSON, NotFound
from receiver.observability.metrics import Metrics
from receiver.operations import (
    destination_report,
    reconciler_report,
    replay_event,
    replay_matching,
    track,
)
from receiver.routing import Router
from receiver.sources import KINDS
from receiver.store import TASK_STATES, DeliveryQuery, Receipt, Store, Stored
from receiver.web.admin._params import Params, delivery_query, event_query, rejected_query
from receiver.web.rejected import retry, retry_all
from receiver.web.responses import JSONResponse

STATUSES = sorted({status for kind in KINDS.values() for status in kind.statuses})


class AdminAPI:
    def __init__(
        self,
        settings: Settings,
        store: Store,
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
            Route("/api/events", self.list_events, methods=["GET"]),
            Route("/api/events/replay", self.replay_events, methods=["POST"]),
            Route("/api/events/{event_id}", self.get_event, methods=["GET"]),
            Route("/api/events/{event_id}/replay", self.replay_one, methods=["POST"]),
            Route("/api/deliveries", self.list_deliveries, methods=["GET"]),
            Route("/api/deliveries/retry", self.retry_deliveries, methods=["POST"]),
            Route("/api/deliveries/{delivery_id}/retry", self.retry_one, methods=["POST"]),
            Route("/api/destinations", self.list_destinations, methods=["GET"]),
            Route("/api/destinations/{name}/pause", self.pause, methods=["POST"]),
            Route("/api/destinations/{name}/resume", self.resume, methods=["POST"]),
            Route("/api/tasks", self.list_tasks, methods=["GET"]),
            Route("/api/tasks", self.track_task, methods=["POST"]),
            Route("/api/reconciler", self.reconciler, methods=["GET"]),
            Route("/api/rejected", self.list_rejected, methods=["GET"]),
            Route("/api/rejected/retry", self.retry_rejected, methods=["POST"]),
            Route("/api/rejected/{rejected_id}", self.get_rejected, methods=["GET"]),
            Route("/api/rejected/{rejected_id}/retry", self.retry_one_rejected, methods=["POST"]),
        ]

    async def list_events(self, request: Request) -> Response:
        params = Params(request.query_params)
        query = event_query(params, statuses=STATUSES)
        params.finish()
        found = await self._store.list_events(query)
        next_cursor = found[-1].id if len(found) == query.limit else None
        return JSONResponse({"items": [e.to_dict() for e in found], "next_cursor": next_cursor})

    async def get_event(self, request: Request) -> Response:
        _no_params(request)
        detail = await self._store.event_detail(request.path_params["event_id"])
        if detail is None:
            raise NotFound("no event with that id")
        return JSONResponse(detail.to_dict())

    async def replay_one(self, request: Request) -> Response:
        _no_params(request)
        body = await _body(request)
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
            new_id=_new_id(body),
        )
        if not created:
            raise Invalid(
                "no route sends this event anywhere; name a destination", field="destination"
            )
        self._wake()
        return JSONResponse({"deliveries": [{"id": d, "destination": name} for d, name in created]})

    async def replay_events(self, request: Request) -> Response:
        params = Params(request.query_params)
        query = event_query(params, statuses=STATUSES, limit=500)
        params.finish()
        body = await _body(request)
        destination = self._destination(body)
        events, deliveries = await replay_matching(
            self._store, self._router, query, destination=destination, new_id=_new_id(body)
        )
        self._wake()
        return JSONResponse({"events": events, "deliveries": deliveries})

    async def list_deliveries(self, request: Request) -> Response:
        params = Params(request.query_params)
        query = delivery_query(params)
        params.finish()
        found = await self._store.list_deliveries(query)
        next_cursor = found[-1].id if len(found) == query.limit else None
        return JSONResponse({"items": [d.to_dict() for d in found], "next_cursor": next_cursor})

    async def retry_one(self, request: Request) -> Response:
        _no_params(request)
        delivery_id = request.path_params["delivery_id"]
        if not await self._store.requeue(delivery_id=delivery_id):
            known = await self._store.list_deliveries(DeliveryQuery(delivery_id=delivery_id))
            if not known:
                raise NotFound("no delivery with that id")
            raise Conflict(f"only dead deliveries are retried; this one is {known[0].state}")
        self._wake()
        return JSONResponse({"requeued": 1})

    async def retry_deliveries(self, request: Request) -> Response:
        params = Params(request.query_params)
        params.text("state", choices=("dead",))
        destination = params.text("destination")
        event_id = params.text("event")
        params.finish()
        count = await self._store.requeue(destination=destination, event_id=event_id)
        self._wake()
        return JSONResponse({"requeued": count})

    async def list_destinations(self, request: Request) -> Response:
        _no_params(request)
        items = await destination_report(self._store, self._settings.destinations)
        return JSONResponse({"items": items})

    async def pause(self, request: Request) -> Response:
        return await self._set_state(request, "paused", "paused by an operator")

    async def resume(self, request: Request) -> Response:
        return await self._set_state(request, "active", None)

    async def _set_state(self, request: Request, state: str, reason: str | None) -> Response:
        _no_params(request)
        name = request.path_params["name"]
        await self._store.sync_destinations(self._settings.destinations)
        if not await self._store.set_destination_state(name, state, reason):
            raise NotFound("no destination with that name")
        self._wake()
        return JSONResponse({"name": name, "state": state})

    async def list_tasks(self, request: Request) -> Response:
        params = Params(request.query_params)
        state = params.text("state", choices=TASK_STATES)
        limit = params.integer("limit", 100, low=1, high=500)
        params.finish()
        tasks = await self._store.list_tasks(state, limit)
        return JSONResponse({"items": [task.to_dict() for task in tasks]})

    async def track_task(self, request: Request) -> Response:
        _no_params(request)
        body = await _body(request)
        unknown = sorted(set(body) - {"source", "task_id", "business_id"})
        if unknown:
            raise Invalid(f"unknown field {unknown[0]!r}", field=unknown[0])
        fields = {}
        for name in ("source", "task_id", "business_id"):
            value = body.get(name)
            if value is not None and not isinstance(value, str):
                raise Invalid(f"{name} must be a string", field=name)
            fields[name] = value
        if not fields["source"]:
            raise Invalid("source is required", field="source")
        task = await track(
            self._store,
            self._settings.sources,
            fields["source"],
            fields["task_id"] or "",
            fields["business_id"],
        )
        self._wake()
        return JSONResponse(task.to_dict())

    async def reconciler(self, request: Request) -> Response:
        _no_params(request)
        return JSONResponse(
            {"sources": await reconciler_report(self._store, self._settings.sources)}
        )

    async def list_rejected(self, request: Request) -> Response:
        params = Params(request.query_params)
        query = rejected_query(params)
        params.finish()
        found = await self._store.list_rejected(query)
        next_cursor = found[-1].id if len(found) == query.limit else None
        return JSONResponse(
            {"items": [r.to_dict(full=False) for r in found], "next_cursor": next_cursor}
        )

    async def get_rejected(self, request: Request) -> Response:
        _no_params(request)
        found = await self._store.get_rejected(request.path_params["rejected_id"])
        if found is None:
            raise NotFound("no rejected request with that id")
        return JSONResponse(found.to_dict())

    async def retry_one_rejected(self, request: Request) -> Response:
        _no_params(request)
        record = await retry(
            self._store,
            self._settings,
            self._router,
            request.path_params["rejected_id"],
            self._stored,
        )
        return JSONResponse(record.to_dict(full=False))

    async def retry_rejected(self, request: Request) -> Response:
        params = Params(request.query_params)
        source = params.text("source")
        params.finish()
        outcomes = await retry_all(self._store, self._settings, self._router, source, self._stored)
        return JSONResponse(
            {name: outcomes[name] for name in ("accepted", "duplicate", "rejected", "skipped")}
        )

    def _stored(self, receipt: Receipt, stored: Stored) -> None:
        """A retried rejected request was stored: count its new events, wake the worker."""
        if self._metrics is not None and stored.new_event_ids:
            new = set(stored.new_event_ids)
            self._metrics.stored(n.event.type for n in receipt.events if n.event.id in new)
        if stored.new_event_ids:
            self._wake()

    def _destination(self, body: dict[str, Any]) -> str | None:
        unknown = sorted(set(body) - {"destination", "new_id"})
        if unknown:
            raise Invalid(f"unknown field {unknown[0]!r}", field=unknown[0])
        destination = body.get("destination")
        if destination is None:
            return None
        if not isinstance(destination, str) or destination not in self._settings.destinations:
            raise Invalid("no destination with that name", field="destination")
        return destination


def _new_id(body: dict[str, Any]) -> bool:
    new_id = body.get("new_id", False)
    if not isinstance(new_id, bool):
        raise Invalid("new_id must be true or false", field="new_id")
    return new_id


def _no_params(request: Request) -> None:
    Params(request.query_params).finish()


async def _body(request: Request) -> dict[str, Any]:
    """An optional JSON object body."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidJSON() from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", field="")
    return body
