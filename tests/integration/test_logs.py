"""What photohook logs about deliveries, at which level, and the facts its JSON lines carry as
fields; photohook under uvicorn, delivering to real sinks and handlers."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.observability.logs import configure_logging
from receiver.tokens import URLTokens

from .conftest import KEY
from .servers import eventually, running

Start = Callable[..., Any]
JSONLog = tuple[Callable[[str], logging.Handler], io.StringIO]


@pytest.fixture
def json_log() -> Iterator[JSONLog]:
    """Start photohook's logging as ``serve --log-format json`` does, into a string."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()

    def start(level: str) -> logging.Handler:
        configure_logging(level, "json")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        return handler

    try:
        yield start, stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def answering(status: int) -> Starlette:
    async def hook(request: Request) -> Response:
        return Response(b"", status_code=status)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


async def test_attempts_are_lines_with_fields_and_the_end_of_a_delivery_is_a_warning(
    photohook: Start, json_log: JSONLog
) -> None:
    start_logging, stream = json_log
    handler = start_logging("info")
    logging.getLogger().handlers[:] = [handler]  # without pytest's own: photohook's one output
    with running(answering(200), lifespan="off") as ok, running(answering(410)) as gone:
        app = await photohook(
            f'[destinations.app]\nurl = "{ok}/hook?key=hush-hush-query"\n'
            f'[destinations.gone]\nurl = "{gone}/hook"\n'
            '[destinations.broken]\nhandler = "tests.plugins.hooks:broken"\n'
            'retry_schedule = ["10ms"]\n'
            '[[routes]]\nto = ["app", "gone", "broken"]\n'
        )
        [event_id] = await app.send(taskId="logged-task")

        async def settled() -> bool:
            return await app.states() == {"app": "delivered", "gone": "held", "broken": "dead"}

        await eventually(settled)
        handler.flush()
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    [access] = [line for line in lines if line.get("logger") == "photohook.access"]
    assert access["level"] == "info"
    assert (access["method"], access["http_status"], access["outcome"]) == ("POST", 200, "accepted")
    assert (access["source"], access["event_id"]) == ("fotor", event_id)
    assert access["path"] == "/hooks/fotor/<token>"
    assert isinstance(access["duration_ms"], float)

    attempts = [line for line in lines if line.get("delivery_id")]
    by = {(line["destination"], line["attempt"]): line for line in attempts}
    assert sorted(by) == [("app", 1), ("broken", 1), ("broken", 2), ("gone", 1)]
    for line in attempts:
        assert (line["source"], line["event_id"], line["task_id"]) == (
            "fotor",
            event_id,
            "logged-task",
        )
        assert line["delivery_id"].startswith("dlv_")
        assert isinstance(line["duration_ms"], float)
    delivered = by["app", 1]
    assert (delivered["level"], delivered["outcome"], delivered["http_status"]) == (
        "info",
        "delivered",
        200,
    )
    retried = by["broken", 1]
    assert (retried["level"], retried["outcome"]) == ("info", "retrying")
    assert retried["error"] == "RuntimeError: the handler is broken"
    dead = by["broken", 2]
    assert (dead["level"], dead["outcome"]) == ("warning", "dead")
    assert "is dead after 2 attempts: RuntimeError: the handler is broken" in dead["message"]
    assert "logged-task" in dead["message"] and event_id in dead["message"]
    disabled = by["gone", 1]
    assert (disabled["level"], disabled["outcome"], disabled["http_status"]) == (
        "warning",
        "held",
        410,
    )
    assert disabled["message"].startswith("destination gone disabled: ")

    # A failed attempt is one line: no traceback, not even for the handler that raised.
    assert not [line for line in lines if "exception" in line]
    assert not [line for line in lines if line["level"] in ("error", "critical")]
    text = stream.getvalue()
    assert "Traceback" not in text
    assert URLTokens([KEY]).token("fotor") not in text
    assert "hush-hush-query" not in text


async def test_at_debug_level_a_failed_handler_leaves_its_traceback(
    photohook: Start, json_log: JSONLog
) -> None:
    start_logging, stream = json_log
    handler = start_logging("debug")
    logging.getLogger().handlers[:] = [handler]
    app = await photohook(
        '[destinations.broken]\nhandler = "tests.plugins.hooks:broken"\nretry_schedule = []\n'
        '[[routes]]\nto = ["broken"]\n'
    )
    await app.send(taskId="debugged-task")
    await eventually(lambda: app.all_in("dead", 1))
    handler.flush()
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    [failed] = [line for line in lines if "exception" in line]
    assert failed["level"] == "debug"
    assert "RuntimeError: the handler is broken" in failed["exception"]
