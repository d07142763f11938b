"""Fake Fotor and Crop.photo APIs on loopback, answering in the documented shapes."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "provider-api-key-0123456789"


class FakeProvider:
    """Tasks by id; ``failures`` are answered first, one per request: an HTTP status, a Fotor
    error code ("999"), or ("slow", seconds)."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.failures: list[Any] = []
        self.requests: list[str] = []
        self.key = API_KEY
        self._lock = threading.Lock()

    def _next_failure(self, task_id: str) -> Any:
        with self._lock:
            self.requests.append(task_id)
            return self.failures.pop(0) if self.failures else None

    async def _refusal(self, request: Request, task_id: str) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.key}":
            self.requests.append(task_id)
            return JSONResponse({"code": "401", "msg": "invalid api key"}, status_code=401)
        failure = self._next_failure(task_id)
        if isinstance(failure, tuple):
            await asyncio.sleep(failure[1])
            return None
        if isinstance(failure, int):
            return JSONResponse({"msg": "failure"}, status_code=failure)
        if isinstance(failure, str):
            return JSONResponse({"code": failure, "msg": "unknown error", "data": None})
        return None


class FakeFotor(FakeProvider):
    """``GET /v1/aiart/tasks/{taskId}``."""

    def __init__(self) -> None:
        super().__init__()
        self.app = Starlette(routes=[Route("/v1/aiart/tasks/{task_id}", self._task)])

    async def _task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        refusal = await self._refusal(request, task_id)
        if refusal is not None:
            return refusal
        data = self.tasks.get(task_id)
        if data is not None:
            data = {"createTime": 1795300000000, "updateTime": 1795300060000, **data}
        return JSONResponse({"code": "000", "msg": "success", "data": data})


class FakeCropPhoto(FakeProvider):
    """``POST /v1/banners/with-mask/status`` with ``{"job_id": ...}``."""

    def __init__(self) -> None:
        super().__init__()
        self.app = Starlette(
            routes=[Route("/v1/banners/with-mask/status", self._status, methods=["POST"])]
        )

    async def _status(self, request: Request) -> Response:
        job_id = (await request.json()).get("job_id", "")
        refusal = await self._refusal(request, job_id)
        if refusal is not None:
            return refusal
        job = self.tasks.get(job_id)
        if job is None:
            return JSONResponse({"jobs": [], "results": [], "error_message": ""})
        return JSONResponse(
            {
                "jobs": [{k: job[k] for k in ("job_id", "status", "job_labels")}],
                "results": job.get("results", []),
                "error_message": job.get("error_message", ""),
            }
        )
