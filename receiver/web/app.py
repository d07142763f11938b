"""The ASGI application: ingest, health, the admin API, the dashboard and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from receiver.background import Background
from receiver.config.settings import Settings
from receiver.errors import ServiceUnavailable, StoreError
from receiver.keeping import open_result_store, results_in_use
from receiver.observability import tracing
from receiver.observability.logs import RequestLog
from receiver.observability.metrics import MEDIA_TYPE, Metrics
from receiver.retention import prune_forever
from receiver.routing import Router
from receiver.store import Meta, open_store
from receiver.tokens import URLTokens
from receiver.web.admin.access import AdminAccess
from receiver.web.admin.api import AdminAPI
from receiver.web.admin.dashboard import Dashboard
from receiver.web.admin.openapi import document
from receiver.web.files import Files
from receiver.web.ingest import Ingest, hook_path_params
from receiver.web.responses import ERROR_HANDLERS, JSONResponse, error_response

logger = logging.getLogger("photohook")

Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(settings: Settings | None = None, *, worker: bool = True) -> Starlette:
    """The photohook ASGI application, configured by ``settings`` (default: ``Settings.load()``).

    Mount it inside another Starlette or FastAPI application, or serve it with uvicorn; the
    database is opened (and migrated) by the application's lifespan, which also runs the delivery
    worker unless ``worker=False`` (then run ``photohook worker`` beside it).
    """
    settings = settings if settings is not None else Settings.load()
    if worker:
        settings = settings.with_callables()
    tracing.configure()
    store = open_store(settings.database_url)
    router = Router(settings.routes)
    metrics = Metrics(settings.sources, settings.destinations)
    background = Background(settings, store, router, metrics=metrics) if worker else None
    wake = background.wake if background is not None else _nothing
    ingest = Ingest(settings, store, router, metrics, wake=wake)
    files = Files(store)
    access = AdminAccess(settings.admin_token, settings.trusted_proxies)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open(migrate=settings.migrate)
        tasks: list[asyncio.Task[None]] = []
        try:
            ingest.start(await url_tokens(settings, store))
            await store.sync_destinations(settings.destinations)
            if await results_in_use(settings, store):
                files.start(await open_result_store(settings, store))
            _log_start(settings)
            if background is not None:
                await background.start()
            if settings.retention is not None:
                tasks.append(asyncio.create_task(prune_forever(store, settings.retention)))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if background is not None:
                    await background.stop()
        finally:
            await store.close()
            tracing.flush()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        try:
            await store.check_writable()
        except StoreError as exc:
            logger.error("readiness check failed: %s", exc)
            return error_response(ServiceUnavailable("the database is not writable"))
        return JSONResponse({"ok": True})

    async def openapi(request: Request) -> Response:
        return JSONResponse(document())

    async def prometheus(request: Request) -> Response:
        return Response(await metrics.render(store), media_type=MEDIA_TYPE)

    def guarded(endpoint: Endpoint) -> Endpoint:
        async def check_then_call(request: Request) -> Response:
            access.check(request)
            return await endpoint(request)

        return check_then_call

    admin_routes: list[BaseRoute] = [
        Route(route.path, guarded(route.endpoint), methods=route.methods)
        for route in AdminAPI(settings, store, router, wake, metrics).routes()
        if isinstance(route, Route)
    ]
    app = _App(
        ingest,
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/files/{token}", files.get, methods=["GET"]),
            Route("/metrics", guarded(prometheus), methods=["GET"]),
            *admin_routes,
            *Dashboard(settings, store, router, access, wake, metrics, files).routes(),
        ],
        middleware=[Middleware(RequestLog)],
        lifespan=lifespan,
        exception_handlers={**ERROR_HANDLERS, Exception: _unexpected},
    )
    # A provider that posts to a path with a trailing slash gets an answer, not a redirect.
    app.router.redirect_slashes = False
    app.state.store = store
    app.state.background = background
    app.state.metrics = metrics
    return app


class _App(Starlette):
    """Starlette, with providers' callbacks (``/hooks/...``) answered ahead of its middleware and
    router: every callback takes this path, and through them it cost clearly more CPU (measured by
    ``python -m bench.parts --internals``, recorded in bench/results). Plain ASGI, no internals.

    The other routes, the operators', go through Starlette as usual.
    """

    def __init__(self, hooks: Ingest, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hooks = hooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            params = hook_path_params(scope)
            if params is not None:
                scope["app"] = self
                scope["path_params"] = params
                await self._hooks(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def url_tokens(settings: Settings, store: Meta) -> URLTokens:
    """URL tokens under ``PHOTOHOOK_SECRET_KEYS``, or else the key kept in the database."""
    keys = [key.reveal() for key in settings.secret_keys]
    return URLTokens(keys or [await store.url_token_key()])


def _nothing() -> None:
    pass


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Our fault, never the provider's: 503 so that it sends the callback again. Starlette raises
    # the exception again after this response, so the server logs its traceback.
    return error_response(ServiceUnavailable())


def _log_start(settings: Settings) -> None:
    for name, source in settings.sources.items():
        path = f"/hooks/{name}/<token>" if "token" in source.require else f"/hooks/{name}"
        checks = ", ".join(sorted(source.require))
        logger.info("source %s (%s): POST %s, checks: %s", name, source.kind, path, checks)
    if any("token" in source.require for source in settings.sources.values()):
        logger.info("run 'photohook url SOURCE' to print the full URL to register")
    if not settings.routes:
        logger.info("no routes are configured: events are stored and not delivered")
    for route in settings.routes:
        logger.info("route %s: %s -> %s", route.name, route.conditions(), ", ".join(route.to))
    if settings.admin_token is None:
        logger.info(
            "PHOTOHOOK_ADMIN_TOKEN is not set: the admin API, dashboard and metrics answer "
            "loopback clients only"
        )
