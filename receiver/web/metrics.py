"""A worker's own ``/metrics`` server, for a process that serves no other HTTP."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.observability.metrics import MEDIA_TYPE, Metrics
from receiver.store import Status
from receiver.web.admin.access import AdminAccess
from receiver.web.responses import ERROR_HANDLERS


def metrics_app(metrics: Metrics, store: Status, access: AdminAccess) -> Starlette:
    """``GET /metrics`` and nothing else (``photohook worker --metrics-port``); the same access
    as the admin API's."""

    async def prometheus(request: Request) -> Response:
        access.check(request)
        return Response(await metrics.render(store), media_type=MEDIA_TYPE)

    return Starlette(
        routes=[Route("/metrics", prometheus, methods=["GET"])],
        exception_handlers=ERROR_HANDLERS,
    )
