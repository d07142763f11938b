"""What photohook makes of each sample answer of the providers' status APIs: the request it
sends, the document it keeps (or the error it raises) and the events it parses from it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.sources import KINDS, KeyRejected, ProviderUnavailable
from tests.helpers import FIXTURES
from tests.integration.servers import running

from .golden import check_json

ANSWERS = FIXTURES / "status"
API_KEY = "golden-status-api-key"
SAMPLES = sorted(p.relative_to(ANSWERS).with_suffix("").as_posix() for p in ANSWERS.rglob("*.json"))
UNKNOWN_TASK = {"fotor": "0123456789abcdef0123456789abcdef", "cropphoto": "bj_9999999999"}


class Provider:
    """A status API on loopback that answers every request with the body and status it is given,
    and records what it was asked."""

    def __init__(self) -> None:
        self.body, self.status = b"", 200
        self.asked: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET", "POST"])])

    async def _answer(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.asked.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "authorization": request.headers.get("authorization"),
                    "content-type": request.headers.get("content-type"),
                    "body": orjson.loads(body) if body else None,
                }
            )
        return Response(self.body, self.status, media_type="application/json")


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[Provider, str]]:
    served = Provider()
    with running(served.app, lifespan="off") as url:
        yield served, url


def asked_about(kind: str, answer: Any) -> str:
    """The task the sample answer is about (a made-up one when it knows none)."""
    data = answer.get("data") if kind == "fotor" else (answer.get("jobs") or [None])[0]
    if isinstance(data, dict):
        return str(data["taskId"] if kind == "fotor" else data["job_id"])
    return UNKNOWN_TASK[kind]


async def outcome(
    provider: tuple[Provider, str], kind: str, task_id: str, body: bytes, status: int = 200
) -> dict[str, Any]:
    served, url = provider
    served.body, served.status, served.asked = body, status, []
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            answer = await KINDS[kind].fetch_status(client, url, API_KEY, task_id)
        except (ProviderUnavailable, KeyRejected) as exc:
            return {"request": served.asked, "raises": type(exc).__name__, "message": str(exc)}
    parsed = KINDS[kind].parse(answer.document) if answer.document is not None else []
    return {
        "request": served.asked,
        "document": answer.document,
        "body": answer.body.decode(),
        "events": [
            event._asdict() | {"terminal": event.status in KINDS[kind].terminal_statuses}
            for event in parsed
        ],
    }


@pytest.mark.parametrize("sample", SAMPLES)
async def test_each_sample_answer_gives_the_golden_result(
    provider: tuple[Provider, str], sample: str
) -> None:
    kind = Path(sample).parts[0]
    body = (ANSWERS / f"{sample}.json").read_bytes()
    result = await outcome(provider, kind, asked_about(kind, orjson.loads(body)), body)
    check_json(f"status/{sample}.json", result)


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_answers_that_are_not_a_status_give_the_golden_errors(
    provider: tuple[Provider, str], kind: str
) -> None:
    task_id = UNKNOWN_TASK[kind]
    not_found = b'{"msg": "not found"}'
    results = {
        f"HTTP {status}": await outcome(provider, kind, task_id, not_found, status)
        for status in (401, 403, 404, 429, 500, 503)
    }
    results["not JSON"] = await outcome(provider, kind, task_id, b"<html>busy</html>")
    results["a JSON array"] = await outcome(provider, kind, task_id, b"[]")
    check_json(f"status/{kind}/not-a-status.json", results)
