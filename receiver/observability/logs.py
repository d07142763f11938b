"""Logging set-up: human-readable lines, or JSON lines with ``--log-format json``."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import select
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from receiver import redact
from receiver.ids import random_bytes

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
access_logger = logging.getLogger("photohook.access")


#: The facts a line can carry besides its message, each a field of its JSON object: given as
#: ``extra={...}`` to a logging call, or as ``fields`` to :func:`log_often`. None of them may
#: hold a token or a secret: paths are masked; ``error`` carries a handler's or destination's
#: error text, so whatever writes one keeps URLs out of it or strips their query and userinfo
#: (as the keeper does).
FIELDS = (
    "source",
    "event_id",
    "task_id",
    "delivery_id",
    "destination",
    "attempt",
    "outcome",
    "http_status",
    "duration_ms",
    "error",
    "method",
    "path",
)
Fields = Mapping[str, object]


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the facts of :data:`FIELDS` the
    record carries (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "request_id", ""),
            {name: getattr(record, name) for name in FIELDS if hasattr(record, name)},
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()

    def line(
        self,
        created: float,
        level: str,
        name: str,
        message: str,
        request_id: str,
        fields: Fields | None = None,
    ) -> str:
        """What :meth:`format` makes of a record with these fields and no exception."""
        return orjson.dumps(_entry(created, level, name, message, request_id, fields)).decode()


def _entry(
    created: float,
    level: str,
    name: str,
    message: str,
    request_id: str,
    fields: Fields | None = None,
) -> dict[str, object]:
    entry: dict[str, object] = {
        "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level.lower(),
        "logger": name,
        "message": message,
    }
    if request_id:
        entry["request_id"] = request_id
    if fields:
        entry.update((key, value) for key, value in fields.items() if value is not None)
    return entry


class TextFormatter(logging.Formatter):
    """``time level logger: message``; the time's date and seconds are formatted once a second."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._second = -1
        self._seconds_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._time(record.created)

    def line(
        self,
        created: float,
        level: str,
        name: str,
        message: str,
        request_id: str,
        fields: Fields | None = None,
    ) -> str:
        """What :meth:`format` makes of a record with these fields and no exception (the
        message says what the fields hold)."""
        return f"{self._time(created)} {level:<7} {name}: {message}"

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._seconds_text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._seconds_text},{int((created - second) * 1000):03d}"


class TokenMaskingFilter(logging.Filter):
    """Masks the URL token of ``/hooks/{source}/{token}`` in every record it sees, as
    ``/hooks/{source}/<token>``.

    photohook logs its own requests with the token masked; a server or application that embeds
    it logs them its own way. Add this filter to the logger that writes those lines (uvicorn's
    ``uvicorn.access``), or to a handler, so that they never show a token either.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact.path(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _masked(value) for key, value in record.args.items()}
        return True


def _masked(value: object) -> object:
    return redact.path(value) if isinstance(value, str) else value


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def begin_request() -> tuple[str, contextvars.Token[str]]:
    """A new request id, set for the log lines of this request; reset it with the token."""
    request_id = random_bytes(8).hex()
    return request_id, REQUEST_ID.set(request_id)


def log_request(
    method: str,
    path: str,
    status: int,
    outcome: str,
    started: float,
    fields: Fields | None = None,
) -> None:
    """The access line of a request; ``path`` must have its secrets masked already."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    elapsed = (time.perf_counter() - started) * 1000
    message = f"{method} {path} {status}{' ' if outcome else ''}{outcome} {elapsed:.1f}ms"
    output = _sole_output(access_logger)
    if output is not None and not output.with_fields:
        output.soon(access_logger.name, message)  # a text line: its message says it all
        return
    facts = {
        "method": method,
        "path": path,
        "http_status": status,
        "outcome": outcome or None,
        "duration_ms": round(elapsed, 3),
    }
    log_often(access_logger, message, {**facts, **fields} if fields else facts)


def log_often(logger: logging.Logger, message: str, fields: Fields | None = None) -> None:
    """``logger.info(message, extra=fields)``, for a line logged many times a second (a
    request's, a delivery's): written with the others of its moment (see :class:`_Output`)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    output = _sole_output(logger)
    if output is None:
        logger.info(message, extra=fields)
    else:
        output.soon(logger.name, message, fields)


#: Seconds a frequent line (see :func:`log_often`) may wait in memory before it is written.
FLUSH_INTERVAL = 0.05
#: Waiting lines written at once however recent, so that a burst never piles up in memory.
FLUSH_LINES = 256
#: The most characters written in one go. A write of up to PIPE_BUF bytes to a pipe is never
#: interleaved with another process's (the processes of ``serve --processes`` share stderr),
#: and a character takes at most 4 bytes.
_ATOMIC_CHARS = select.PIPE_BUF // 4


class _Output(logging.StreamHandler[TextIO]):
    """photohook's one log handler: every record to stderr, in one format; each request's and
    delivery's line batched with others, since a record and a write each clearly cost more CPU.

    A frequent line, one per request or per delivery, comes through :meth:`soon` without a
    ``LogRecord`` and waits in memory for up to :data:`FLUSH_INTERVAL`, to be written with the
    others of that moment: one write for many (what it saves is measured by ``python -m
    bench.parts --internals`` and recorded in bench/results). Any other record first writes the
    lines waiting before it, then itself, at once; so the order of lines is kept, and a warning
    or an error is never late. A process killed outright loses the last moment's lines; every
    accepted callback and every attempt is in the database all the same.
    """

    def __init__(self, formatter: JSONFormatter | TextFormatter) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(formatter)
        self._line = formatter.line
        #: Whether its lines carry the fields given beside the message (JSON lines do).
        self.with_fields = isinstance(formatter, JSONFormatter)
        self._waiting: list[str] = []

    def soon(self, name: str, message: str, fields: Fields | None = None) -> None:
        """Write logger ``name``'s INFO line ``message`` soon (at once, outside an event loop)."""
        try:
            line = self._line(time.time(), "INFO", name, message, REQUEST_ID.get(), fields)
        except Exception:
            # As for a record that cannot be formatted: reported on stderr, never raised.
            self.handleError(logging.makeLogRecord({"name": name, "msg": message}))
            return
        with self.lock:  # type: ignore[union-attr]  # made in __init__
            self._waiting.append(line + self.terminator)
            waiting = len(self._waiting)
        if waiting >= FLUSH_LINES:
            self.flush()
        elif waiting == 1:
            try:
                asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)
            except RuntimeError:
                self.flush()

    def emit(self, record: logging.LogRecord) -> None:
        self._write_waiting()  # the lock is held (Handler.handle)
        super().emit(record)

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_waiting()
            super().flush()
        finally:
            self.release()

    def _write_waiting(self) -> None:
        """Write the waiting lines, whole lines at a time, in writes of at most
        :data:`_ATOMIC_CHARS`."""
        lines, self._waiting = self._waiting, []
        chunk: list[str] = []
        size = 0
        # When stderr is gone, the lines are dropped, as logging drops a record it cannot write.
        with contextlib.suppress(OSError, ValueError):
            for line in lines:
                if chunk and size + len(line) > _ATOMIC_CHARS:
                    self._write("".join(chunk))
                    chunk.clear()
                    size = 0
                chunk.append(line)
                size += len(line)
            if chunk:
                self._write("".join(chunk))

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


_output: _Output | None = None


def _sole_output(logger: logging.Logger) -> _Output | None:
    """photohook's handler, when :func:`configure_logging` installed it and a record of
    ``logger`` would reach it and nothing else; otherwise (a test capturing records, an
    application embedding photohook with a logging set-up of its own) None."""
    if _output is None or logger.filters:
        return None
    while logger.parent is not None:
        if logger.handlers or not logger.propagate:
            return None
        logger = logger.parent
    return _output if logger.handlers == [_output] else None


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
    global _output
    # No format of ours shows threads, processes or the calling function: not looking them up
    # for every record is the logging HOWTO's advice for speed.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = _Output(JSONFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    _output = handler
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
    # The broker clients log each lost or refused connection, some naming the broker's user;
    # the delivery's attempt records the same failure, its credentials taken out.
    for name in ("aiormq", "aio_pika", "nats"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
