"""The dashboard's batches: ``/ui/batches`` lists them with their progress, ``/ui/batches/{id}``
shows one and each of its tasks. Rendered and guarded as the rest of the dashboard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from receiver.errors import NotFound
from receiver.states import BATCH_STATES
from receiver.store import Batch, Batches, BatchQuery
from receiver.web.admin.contract import BatchList
from receiver.web.admin.queries import read_params

Endpoint = Callable[[Request], Awaitable[Response]]
Render = Callable[[Request, str, dict[str, Any]], Response]


class BatchPages:
    """The batch pages, given the dashboard's guard (``page``) and renderer."""

    def __init__(
        self, store: Batches, page: Callable[[Endpoint], Endpoint], render: Render
    ) -> None:
        self._store = store
        self._page = page
        self._render = render

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/ui/batches", self._page(self.batches), methods=["GET"], name="ui-batches"),
            Route(  # a batch id may contain "/"
                "/ui/batches/{batch_id:path}",
                self._page(self.batch),
                methods=["GET"],
                name="ui-batch",
            ),
        ]

    async def batches(self, request: Request) -> Response:
        params = read_params(BatchList, request.query_params)
        query = BatchQuery(state=params.state, before=params.cursor, limit=params.limit)
        found = await self._store.list_batches(query)
        context = {
            "batches": [progress(b) for b in found],
            "state": params.state,
            "states": BATCH_STATES,
            "next_cursor": found[-1].id if len(found) == query.limit else None,
        }
        return self._render(request, "batches.html", context)

    async def batch(self, request: Request) -> Response:
        detail = await self._store.batch_detail(request.path_params["batch_id"])
        if detail is None:
            raise NotFound("no batch with that id")
        found, tasks = detail
        waiting = [t for t in tasks if t.status is None]
        finished = sorted(
            (t for t in tasks if t.status is not None), key=lambda t: t.status != "failed"
        )
        context = {"batch": progress(found), "tasks": [*waiting, *finished]}
        return self._render(request, "batch.html", context)


def progress(found: Batch) -> dict[str, Any]:
    """A batch as its pages show it: its counts, and the widths of its progress bar's parts
    (percent of its size, or of the tasks known while the size is not)."""
    whole = max(found.size or found.tasks, 1)
    return {
        "batch": found,
        "done": found.completed + found.failed,
        "size": "?" if found.size is None else str(found.size),
        "completed_width": round(100 * found.completed / whole, 1),
        "failed_width": round(100 * found.failed / whole, 1),
    }
