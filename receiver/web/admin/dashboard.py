"""The dashboard under ``/ui``: server-rendered pages over the same store as the admin API.

Every link, form and redirect is built from the request's ``root_path`` and this application's
own routes, so the pages work mounted below a prefix and behind a proxy that serves them there.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote

import jinja2
import msgspec
from msgspec import Struct
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from receiver.config.settings import Settings
from receiver.errors import Forbidden, Malformed, NotFound, Refused, Unauthorized
from receiver.events import parse_time
from receiver.observability.metrics import Metrics
from receiver.operations import destination_report, replay_event
from receiver.routing import Router
from receiver.states import DeliveryState, DestinationState
from receiver.store import DELIVERY_STATES, Dashboarding, DeliveryQuery
from receiver.store.batches import SOURCE as BATCH_SOURCE
from receiver.web.admin import answers, overview, thumbnails
from receiver.web.admin.access import SESSION_COOKIE, SESSION_SECONDS, AdminAccess
from receiver.web.admin.batch_pages import BatchPages
from receiver.web.admin.contract import (
    STATUSES,
    EventList,
    Params,
    RejectedList,
    Text,
)
from receiver.web.admin.queries import event_query, read_params, rejected_query
from receiver.web.files import Files
from receiver.web.rejected import retry
from receiver.web.responses import answer

Endpoint = Callable[[Request], Awaitable[Response]]


def when(moment: datetime | float | str | None) -> str:
    """The one way the dashboard shows a time: ``2026-12-06 03:41:35 UTC``."""
    if moment is None or moment == 0 or moment == "":
        return "-"
    if isinstance(moment, str):
        moment = parse_time(moment)
    elif not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def route_path(request: Request) -> str:
    """The request's path below the application's mount point (or the proxy's prefix)."""
    root: str = request.scope.get("root_path", "")
    path: str = request.scope["path"]
    return path[len(root) :] if root and path.startswith(root) else path


def path_for(request: Request, name: str, /, **params: Any) -> str:
    """The path of one of the dashboard's routes as the browser must ask for it: below the
    prefix the application is served at. Starlette's ``url_for`` resolves names through the
    outermost router, where a host application's own names and mounts would get in the way."""
    root: str = request.scope.get("root_path", "")
    quoted = {key: _quoted(value) for key, value in params.items()}
    return root + str(request.app.router.url_path_for(name, **quoted))


def _quoted(value: Any) -> str:
    """A path parameter percent-encoded as a link carries it (Starlette decodes it before
    routing). A ``/`` stays as it is, unless a segment is empty, ``.`` or ``..``, which a browser
    would rewrite: then it is sent as ``%2F``, which reaches the route as ``/`` all the same."""
    text = str(value)
    odd = {"", ".", ".."} & set(text.split("/"))
    return quote(text, safe="" if odd else "/")


@jinja2.pass_context
def _path(context: Any, name: str, /, **params: Any) -> str:
    return path_for(context["request"], name, **params)


_TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
_TEMPLATES.env.filters["when"] = when
_TEMPLATES.env.globals["path"] = _path


class Dashboard:
    def __init__(
        self,
        settings: Settings,
        store: Dashboarding,
        router: Router,
        access: AdminAccess,
        wake: Callable[[], None],
        metrics: Metrics,
        files: Files | None = None,
    ) -> None:
        self._metrics = metrics
        self._files = files
        self._settings = settings
        self._store = store
        self._router = router
        self._access = access
        self._wake = wake

    def routes(self) -> list[BaseRoute]:
        page = self._page
        return [
            Route("/ui", self.home, methods=["GET"], name="ui"),
            Route("/ui/login", self.login_form, methods=["GET"], name="ui-login"),
            Route("/ui/login", self.login, methods=["POST"], name="ui-login-post"),
            Route("/ui/logout", self.logout, methods=["POST"], name="ui-logout"),
            Route("/ui/overview", page(self.overview), methods=["GET"], name="ui-overview"),
            Route("/ui/events", page(self.events), methods=["GET"], name="ui-events"),
            Route("/ui/events/{event_id}", page(self.event), methods=["GET"], name="ui-event"),
            Route(
                "/ui/events/{event_id}/replay",
                page(self.replay),
                methods=["POST"],
                name="ui-replay",
            ),
            Route("/ui/deliveries", page(self.deliveries), methods=["GET"], name="ui-deliveries"),
            Route(
                "/ui/deliveries/retry", page(self.retry_all), methods=["POST"], name="ui-retry-all"
            ),
            Route(
                "/ui/deliveries/{delivery_id}/retry",
                page(self.retry),
                methods=["POST"],
                name="ui-retry",
            ),
            Route(
                "/ui/destinations", page(self.destinations), methods=["GET"], name="ui-destinations"
            ),
            Route(
                "/ui/destinations/{name}/{action}",
                page(self.set_state),
                methods=["POST"],
                name="ui-destination-state",
            ),
            Route("/ui/rejected", page(self.rejected), methods=["GET"], name="ui-rejected"),
            Route(
                "/ui/rejected/{rejected_id}",
                page(self.rejected_request),
                methods=["GET"],
                name="ui-rejected-request",
            ),
            Route(
                "/ui/rejected/{rejected_id}/retry",
                page(self.retry_rejected),
                methods=["POST"],
                name="ui-rejected-retry",
            ),
            *BatchPages(self._store, page, self._render).routes(),
        ]

    def _page(self, handler: Endpoint) -> Endpoint:
        """The page behind the admin check: a login form for strangers, errors as pages."""

        async def guarded(request: Request) -> Response:
            try:
                self._access.check(request)
                if request.method == "POST":
                    _check_origin(request)
                return await handler(request)
            except Unauthorized:
                here = quote(route_path(request))  # the scope's path is decoded; a link is not
                if request.url.query:
                    here += f"?{request.url.query}"
                login = path_for(request, "ui-login")
                return RedirectResponse(f"{login}?next={quote(here, safe='/')}", 303)
            except Refused as error:
                found = answer(error)
                return self._render(
                    request, "error.html", {"error": found}, status_code=found.status_code
                )

        return guarded

    def _render(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        context = {
            "needs_login": self._access.token is not None,
            "here": route_path(request),
            **context,
        }
        return _TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)

    async def login_form(self, request: Request) -> Response:
        return self._render(request, "login.html", {"failed": False})

    async def login(self, request: Request) -> Response:
        cookie = self._access.new_session((await _form(request)).get("token", ""))
        if cookie is None:
            return self._render(request, "login.html", {"failed": True}, status_code=401)
        # Only a page of the dashboard, below the same prefix: never another site.
        target = str(request.query_params.get("next", ""))
        if not target.startswith("/ui/") or "\\" in target:
            target = "/ui/overview"
        root = request.scope.get("root_path", "")
        response = RedirectResponse(f"{root}{target}", 303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def home(self, request: Request) -> Response:
        return RedirectResponse(path_for(request, "ui-overview"), 303)

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse(path_for(request, "ui-login"), 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def overview(self, request: Request) -> Response:
        read_params(Params, request.query_params)
        now = time.time()
        context = {
            "callbacks": await overview.callback_charts(
                self._store, self._metrics, self._settings.sources, now
            ),
            "attempts": await overview.delivery_charts(
                self._store, self._settings.destinations, now
            ),
            "windows": overview.WINDOWS,
            "statuses": [
                _builtins(answers.destination(status, now, None))
                for status in await self._store.destination_statuses(now)
            ],
        }
        return self._render(request, "overview.html", context)

    async def events(self, request: Request) -> Response:
        params = read_params(_Events, request.query_params)
        query = event_query(params)
        if params.delivery is not None:
            query = dataclasses.replace(query, dead_delivery=True)
        events = await self._store.list_events(query)
        shown = await thumbnails.images(request, self._store, self._files, events)
        context = {
            "events": events,
            "deliveries": await self._store.deliveries_of([event.id for event in events]),
            "thumbnails": {event_id: found[:1] for event_id, found in shown.items()},
            "filters": {key: value for key, value in request.query_params.items() if value},
            "sources": [*self._settings.sources, BATCH_SOURCE],
            "statuses": STATUSES,
            "next_cursor": events[-1].id if len(events) == query.limit else None,
        }
        name = "events_rows.html" if request.query_params.get("partial") else "events.html"
        return self._render(request, name, context)

    async def event(self, request: Request) -> Response:
        detail = await self._store.event_detail(request.path_params["event_id"])
        if detail is None:
            raise NotFound("no event with that id")
        context = {
            "detail": detail,
            "event": detail.event,
            "payload": json.dumps(detail.event.payload, indent=2, ensure_ascii=False),
            "images": (await thumbnails.images(request, self._store, self._files, [detail.event]))[
                detail.event.id
            ],
            "destinations": list(self._settings.destinations),
        }
        return self._render(request, "event.html", context)

    async def replay(self, request: Request) -> Response:
        event = await self._store.get_event(request.path_params["event_id"])
        if event is None:
            raise NotFound("no event with that id")
        destination = (await _form(request)).get("destination") or None
        if destination is not None and destination not in self._settings.destinations:
            raise NotFound("no destination with that name")
        await replay_event(
            self._store,
            self._router,
            event,
            destination=destination,
            destinations=self._settings.destinations,
        )
        self._wake()
        return RedirectResponse(path_for(request, "ui-event", event_id=event.id), 303)

    async def deliveries(self, request: Request) -> Response:
        params = read_params(_Deliveries, request.query_params)
        state, destination = params.state, params.destination
        deliveries = await self._store.list_deliveries(
            DeliveryQuery(state=state, destination=destination, limit=200)
        )
        context = {
            "deliveries": deliveries,
            "events": await self._store.events_by_id(sorted({d.event_id for d in deliveries})),
            "states": DELIVERY_STATES,
            "state": state,
            "destination": destination,
            "destinations": list(self._settings.destinations),
            "dead": sum(d.state == DeliveryState.DEAD for d in deliveries),
        }
        return self._render(request, "deliveries.html", context)

    async def retry(self, request: Request) -> Response:
        await self._store.requeue(delivery_id=request.path_params["delivery_id"])
        self._wake()
        return RedirectResponse(path_for(request, "ui-deliveries"), 303)

    async def retry_all(self, request: Request) -> Response:
        destination = (await _form(request)).get("destination") or None
        await self._store.requeue(destination=destination)
        self._wake()
        return RedirectResponse(path_for(request, "ui-deliveries"), 303)

    async def destinations(self, request: Request) -> Response:
        now, report = await destination_report(self._store, self._settings.destinations)
        statuses = [_builtins(answers.destination(s, now, target)) for s, target in report]
        return self._render(request, "destinations.html", {"statuses": statuses})

    async def set_state(self, request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        states = {
            "pause": (DestinationState.PAUSED, "paused by an operator"),
            "resume": (DestinationState.ACTIVE, None),
        }
        if action not in states:
            raise NotFound("no such action")
        if not await self._store.set_destination_state(name, *states[action]):
            raise NotFound("no destination with that name")
        self._wake()
        return RedirectResponse(path_for(request, "ui-destinations"), 303)

    async def rejected(self, request: Request) -> Response:
        query = rejected_query(read_params(RejectedList, request.query_params))
        found = await self._store.list_rejected(query)
        context = {
            "rejected": found,
            "source": query.source,
            "sources": list(self._settings.sources),
            "next_cursor": found[-1].id if len(found) == query.limit else None,
        }
        return self._render(request, "rejected.html", context)

    async def rejected_request(self, request: Request) -> Response:
        record = await self._store.get_rejected(request.path_params["rejected_id"])
        if record is None:
            raise NotFound("no rejected request with that id")
        return self._render(request, "rejected_request.html", {"record": record})

    async def retry_rejected(self, request: Request) -> Response:
        rejected_id = request.path_params["rejected_id"]
        await retry(
            self._store,
            self._settings,
            self._router,
            rejected_id,
            lambda receipt, stored: self._wake(),
        )
        return RedirectResponse(
            path_for(request, "ui-rejected-request", rejected_id=rejected_id), 303
        )


class _Events(EventList):
    delivery: Literal["dead"] | None = None
    partial: str | None = None


class _Deliveries(Params):
    state: DeliveryState | None = None
    destination: Text | None = None


def _builtins(answer: Struct) -> dict[str, Any]:
    found: dict[str, Any] = msgspec.to_builtins(answer)
    return found


async def _form(request: Request) -> dict[str, str]:
    """The fields of a small urlencoded form (the dashboard posts nothing else)."""
    body = await request.body()
    if len(body) > 4096:
        raise Malformed("the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _check_origin(request: Request) -> None:
    """Refuse cross-site form posts: a browser says where a POST comes from."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("cross-site requests are refused")
