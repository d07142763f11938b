"""Logging set-up: human-readable lines, or JSON lines with ``--log-format json``."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from datetime import UTC, datetime

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import redact
from .ids import random_bytes

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
access_logger = logging.getLogger("photohook.access")


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class TextFormatter(logging.Formatter):
    """``time level logger: message``; the time's date and seconds are formatted once a second."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._second = -1
        self._seconds_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._seconds_text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._seconds_text},{int(record.msecs):03d}"


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def begin_request() -> tuple[str, contextvars.Token[str]]:
    """A new request id, set for the log lines of this request; reset it with the token."""
    request_id = random_bytes(8).hex()
    return request_id, REQUEST_ID.set(request_id)


def log_request(method: str, path: str, status: int, outcome: str, started: float) -> None:
    """The access line of a request; ``path`` must have its secrets masked already."""
    if access_logger.isEnabledFor(logging.INFO):
        elapsed = (time.perf_counter() - started) * 1000
        outcome = f" {outcome}" if outcome else ""
        access_logger.info(f"{method} {path} {status}{outcome} {elapsed:.1f}ms")


class RequestLog:
    """One log line per request (token masked), and an ``X-Request-ID`` on every answer.

    An endpoint can add what came of the request as ``request.state.outcome``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, reset = begin_request()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            outcome = scope.get("state", {}).get("outcome", "")
            path = redact.path(scope["path"])
            log_request(scope["method"], path, status or 500, outcome, started)
            REQUEST_ID.reset(reset)


def configure_logging(level: str = "info", log_format: str = "text") -> None:
    """Send every log record (photohook's and uvicorn's) to stderr in one format."""
    # No format of ours shows threads, processes or the calling function: not looking them up
    # for every record is the logging HOWTO's advice for speed.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # httpx logs every URL it requests at INFO (destination and result URLs can carry
    # credentials in their query strings), and aiosqlite every call with its parameters at DEBUG
    # (the generated URL key among them). photohook logs what matters itself.
    for name in ("httpx", "httpcore", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)
