"""The dashboard under ``/ui``: server-rendered pages over the same store as the admin API."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from ..errors import Forbidden, HTTPError, NotFound, Unauthorized
from ..events import Event, format_timestamp
from ..operations import destination_report, replay_event
from ..rejected import retry
from ..routing import Router
from ..settings import Settings
from ..store import DELIVERY_STATES, DeliveryQuery, Store
from .access import SESSION_COOKIE, SESSION_SECONDS, AdminAccess
from .api import STATUSES
from .params import Params, event_query, rejected_query

Endpoint = Callable[[Request], Awaitable[Response]]

_TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
_TEMPLATES.env.filters["timestamp"] = lambda seconds: (
    format_timestamp(seconds)[:19].replace("T", " ") if seconds else "-"
)


class Dashboard:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        router: Router,
        access: AdminAccess,
        wake: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._store = store
        self._router = router
        self._access = access
        self._wake = wake

    def routes(self) -> list[BaseRoute]:
        page = self._page
        return [
            Route("/ui", lambda request: RedirectResponse("/ui/events", 303), methods=["GET"]),
            Route("/ui/login", self.login_form, methods=["GET"]),
            Route("/ui/login", self.login, methods=["POST"]),
            Route("/ui/logout", self.logout, methods=["POST"]),
            Route("/ui/events", page(self.events), methods=["GET"]),
            Route("/ui/events/{event_id}", page(self.event), methods=["GET"]),
            Route("/ui/events/{event_id}/replay", page(self.replay), methods=["POST"]),
            Route("/ui/deliveries", page(self.deliveries), methods=["GET"]),
            Route("/ui/deliveries/retry", page(self.retry_all), methods=["POST"]),
            Route("/ui/deliveries/{delivery_id}/retry", page(self.retry), methods=["POST"]),
            Route("/ui/destinations", page(self.destinations), methods=["GET"]),
            Route("/ui/destinations/{name}/{action}", page(self.set_state), methods=["POST"]),
            Route("/ui/rejected", page(self.rejected), methods=["GET"]),
            Route("/ui/rejected/{rejected_id}", page(self.rejected_request), methods=["GET"]),
            Route("/ui/rejected/{rejected_id}/retry", page(self.retry_rejected), methods=["POST"]),
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
                return RedirectResponse(f"/ui/login?next={request.url.path}", 303)
            except HTTPError as error:
                return self._render(
                    request, "error.html", {"error": error}, status_code=error.status_code
                )

        return guarded

    def _render(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        context = {"needs_login": self._access.token is not None, **context}
        return _TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)

    async def login_form(self, request: Request) -> Response:
        return self._render(request, "login.html", {"failed": False})

    async def login(self, request: Request) -> Response:
        cookie = self._access.new_session((await _form(request)).get("token", ""))
        if cookie is None:
            return self._render(request, "login.html", {"failed": True}, status_code=401)
        target = str(request.query_params.get("next", "/ui/events"))
        response = RedirectResponse(target if target.startswith("/ui/") else "/ui/events", 303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/ui/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def events(self, request: Request) -> Response:
        params = Params(request.query_params)
        query = event_query(params, statuses=STATUSES)
        params.text("partial")
        params.finish()
        events = await self._store.list_events(query)
        context = {
            "events": events,
            "filters": {key: value for key, value in request.query_params.items() if value},
            "sources": list(self._settings.sources),
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
            "images": _images(detail.event),
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
        return RedirectResponse(f"/ui/events/{event.id}", 303)

    async def deliveries(self, request: Request) -> Response:
        params = Params(request.query_params)
        state = params.text("state", choices=DELIVERY_STATES)
        destination = params.text("destination")
        params.finish()
        deliveries = await self._store.list_deliveries(
            DeliveryQuery(state=state, destination=destination, limit=200)
        )
        context = {
            "deliveries": deliveries,
            "states": DELIVERY_STATES,
            "state": state,
            "destination": destination,
            "destinations": list(self._settings.destinations),
            "dead": sum(d.state == "dead" for d in deliveries),
        }
        return self._render(request, "deliveries.html", context)

    async def retry(self, request: Request) -> Response:
        await self._store.requeue(delivery_id=request.path_params["delivery_id"])
        self._wake()
        return RedirectResponse("/ui/deliveries", 303)

    async def retry_all(self, request: Request) -> Response:
        destination = (await _form(request)).get("destination") or None
        await self._store.requeue(destination=destination)
        self._wake()
        return RedirectResponse("/ui/deliveries", 303)

    async def destinations(self, request: Request) -> Response:
        statuses = await destination_report(self._store, self._settings.destinations)
        return self._render(request, "destinations.html", {"statuses": statuses})

    async def set_state(self, request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        states = {"pause": ("paused", "paused by an operator"), "resume": ("active", None)}
        if action not in states:
            raise NotFound("no such action")
        if not await self._store.set_destination_state(name, *states[action]):
            raise NotFound("no destination with that name")
        self._wake()
        return RedirectResponse("/ui/destinations", 303)

    async def rejected(self, request: Request) -> Response:
        params = Params(request.query_params)
        query = rejected_query(params)
        params.finish()
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
        return RedirectResponse(f"/ui/rejected/{rejected_id}", 303)


def _images(event: Event) -> list[tuple[str, bool]]:
    """Result URLs with whether each was flagged (Fotor's avatar ``hasHsfw``); the payload was
    validated at ingest, so its avatar results are objects with lists of image objects."""
    flagged = {
        image.get("url")
        for result in event.payload.get("avatarResult") or []
        for image in result.get("images") or []
        if image.get("hasHsfw") is True
    }
    return [(url, url in flagged) for url in event.result_urls]


async def _form(request: Request) -> dict[str, str]:
    """The fields of a small urlencoded form (the dashboard posts nothing else)."""
    body = await request.body()
    if len(body) > 4096:
        raise HTTPError("the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _check_origin(request: Request) -> None:
    """Refuse cross-site form posts: a browser says where a POST comes from."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("cross-site requests are refused")
