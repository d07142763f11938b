from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Iterator

import orjson
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from receiver.observability import logs
from receiver.observability.logs import (
    JSONFormatter,
    RequestLog,
    TextFormatter,
    TokenMaskingFilter,
    configure_logging,
    log_request,
)
from tests.helpers import asgi_client


@pytest.fixture
def output() -> Iterator[tuple[logging.StreamHandler[io.StringIO], io.StringIO]]:
    """photohook's logging, as ``serve`` sets it up, into a string; pytest's capture restored
    after. pytest adds a handler of its own as each test begins: :func:`alone` removes it."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("info", "json")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield handler, stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def alone(handler: logging.Handler) -> None:
    logging.getLogger().handlers[:] = [handler]


def lines_of(stream: io.StringIO) -> list[dict[str, str]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


async def test_json_lines_carry_the_request_id(
    output: tuple[logging.StreamHandler[io.StringIO], io.StringIO],
) -> None:
    handler, stream = output
    assert isinstance(handler.formatter, JSONFormatter)

    async def hello(request: object) -> PlainTextResponse:
        logging.getLogger("photohook.test").info("inside the request")
        return PlainTextResponse("hi")

    app = Starlette(
        routes=[Route("/hooks/fotor/{token}", hello)], middleware=[Middleware(RequestLog)]
    )
    async with asgi_client(app) as client:
        response = await client.get("/hooks/fotor/SECRET-TOKEN-VALUE")
    handler.flush()
    lines = lines_of(stream)
    inside = next(line for line in lines if line["message"] == "inside the request")
    access = next(line for line in lines if line["logger"] == "photohook.access")
    assert inside["request_id"] == access["request_id"] == response.headers["x-request-id"]
    assert access["message"].startswith("GET /hooks/fotor/<token> 200")
    assert "SECRET-TOKEN-VALUE" not in stream.getvalue()


async def test_access_lines_are_written_together_soon_and_before_any_later_record(
    output: tuple[logging.StreamHandler[io.StringIO], io.StringIO],
) -> None:
    handler, stream = output
    alone(handler)
    for n in range(3):
        log_request("POST", f"/hooks/fotor/{n}", 200, "accepted", time.perf_counter())
    assert stream.getvalue() == ""  # waiting to be written as one
    for _ in range(200):  # written within a few flush intervals; bounded at a second
        if stream.getvalue():
            break
        await asyncio.sleep(logs.FLUSH_INTERVAL / 10)
    assert [line["message"].split()[1] for line in lines_of(stream)] == [
        "/hooks/fotor/0",
        "/hooks/fotor/1",
        "/hooks/fotor/2",
    ]

    log_request("POST", "/hooks/fotor/3", 503, "unavailable", time.perf_counter())
    logging.getLogger("photohook.ingest").error("cannot store a callback")
    # The error is written at once, and the access line that came before it, before it.
    assert [line["message"][:30] for line in lines_of(stream)[3:]] == [
        "POST /hooks/fotor/3 503 unavai",
        "cannot store a callback",
    ]

    for n in range(logs.FLUSH_LINES):
        log_request("POST", f"/hooks/fotor/{n}", 200, "accepted", time.perf_counter())
    assert len(lines_of(stream)) == 5 + logs.FLUSH_LINES  # a burst is written at once


def test_outside_an_event_loop_an_access_line_is_written_at_once(
    output: tuple[logging.StreamHandler[io.StringIO], io.StringIO],
) -> None:
    handler, stream = output
    alone(handler)
    log_request("GET", "/healthz", 200, "", time.perf_counter())
    assert lines_of(stream)[0]["message"].startswith("GET /healthz 200")


async def test_a_logging_set_up_of_its_own_gets_access_records(
    output: tuple[logging.StreamHandler[io.StringIO], io.StringIO],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # caplog adds a handler of its own to the root logger: the line must reach it as a record.
    caplog.set_level(logging.INFO, logger="photohook.access")
    log_request("POST", "/hooks/fotor/<token>", 200, "accepted", time.perf_counter())
    assert [r.getMessage()[:35] for r in caplog.records] == ["POST /hooks/fotor/<token> 200 accep"]


@pytest.mark.parametrize("formatter", [TextFormatter(), JSONFormatter()], ids=["text", "json"])
@pytest.mark.parametrize("created", [1_795_000_000.0, 1_795_000_000.999, 1_795_000_059.0625])
def test_an_access_line_is_formatted_as_its_record_would_be(
    formatter: TextFormatter | JSONFormatter, created: float
) -> None:
    record = logging.makeLogRecord(
        {"name": "photohook.access", "levelname": "INFO", "msg": "GET / 200 1.0ms"}
    )
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    record.request_id = "0123456789abcdef"
    line = formatter.line(
        created, "INFO", "photohook.access", "GET / 200 1.0ms", "0123456789abcdef"
    )
    assert line == formatter.format(record)


def test_a_line_that_cannot_be_formatted_is_reported_not_raised(
    output: tuple[logging.StreamHandler[io.StringIO], io.StringIO],
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler, stream = output
    alone(handler)
    log_request("POST", "/hooks/\udc80", 200, "accepted", time.perf_counter())  # no UTF-8
    assert stream.getvalue() == ""
    assert "Logging error" in capsys.readouterr().err


class _Writes(io.StringIO):
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_lines_are_written_whole_in_writes_another_process_cannot_tear(
    output: tuple[logging.StreamHandler[io.StringIO], io.StringIO],
) -> None:
    handler, _ = output
    stream = _Writes()
    handler.setStream(stream)
    alone(handler)
    for n in range(logs.FLUSH_LINES):  # written at once, as a burst is
        log_request("POST", f"/hooks/fotor/{'x' * (n % 50)}", 200, "accepted", time.perf_counter())
    assert len(lines_of(stream)) == logs.FLUSH_LINES
    assert len(stream.writes) > 1
    assert all(len(w) <= logs._ATOMIC_CHARS and w.endswith("\n") for w in stream.writes)


def test_the_token_masking_filter_masks_messages_and_their_arguments() -> None:
    masking = TokenMaskingFilter()
    record = logging.makeLogRecord(
        {"msg": 'GET /hooks/fotor/abc %s "%s" %d', "args": ("x", "/p/hooks/crop/s3cr3t?a=1", 200)}
    )
    assert masking.filter(record)
    assert record.getMessage() == 'GET /hooks/fotor/<token> x "/p/hooks/crop/<token>?a=1" 200'
    named = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, "%(path)s", ({"path": "/hooks/fotor/abc"},), None
    )
    assert masking.filter(named)
    assert named.getMessage() == "/hooks/fotor/<token>"
