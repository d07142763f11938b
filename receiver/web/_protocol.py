"""uvicorn's private httptools protocol (``httptools_impl``), extended: uvicorn bounds neither how
long a client may take to send its headers nor how large they grow, a public endpoint must.

This is the only module that reaches into uvicorn's internals; pyproject.toml bounds uvicorn below
its next minor release and ``tests/unit/test_fences.py`` fails when what is used here changes.
A connection that has not finished a request's headers within ``header_timeout`` seconds is
answered 408 and closed, and headers over ``max_header_bytes`` (or ``max_headers`` lines) are
answered 431 and closed, before the application sees them. How long the body may take is the
ingest endpoint's own limit.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 256


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    max_header_bytes: int = MAX_HEADER_BYTES
    max_headers: int = MAX_HEADERS

    def __init__(self, *args: Any, header_timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        #: When the headers being read must be complete (loop time); None between requests.
        self._headers_due: float | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._header_count = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._header_count = 0
        self._expect_headers()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        self._header_count += 1
        if self._header_bytes > self.max_header_bytes or self._header_count > self.max_headers:
            self._refuse(431, "Request Header Fields Too Large")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_due = None
        super().on_headers_complete()

    def _expect_headers(self) -> None:
        """Headers are due within ``header_timeout`` from now.

        The connection keeps one timer, moved on only when it fires: a request costs a clock
        reading, not a timer made and cancelled.
        """
        self._headers_due = self.loop.time() + self.header_timeout
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(self._headers_due, self._check_headers)

    def _check_headers(self) -> None:
        self._header_timer = None
        due = self._headers_due
        if due is None:
            return  # between requests; the next one sets the timer again
        if self.loop.time() >= due:
            self._refuse(408, "Request Timeout")
        else:
            self._header_timer = self.loop.call_at(due, self._check_headers)

    def _stop_header_timer(self) -> None:
        self._headers_due = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, status: int, reason: str) -> None:
        """Answer with the JSON error shape and close; the request never reaches the app."""
        self._stop_header_timer()
        if self.transport.is_closing():
            return
        code = "headers_too_large" if status == 431 else "request_timeout"
        body = f'{{"ok":false,"error":{{"code":"{code}","message":"{reason}"}}}}'.encode()
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        self.transport.close()


def guarded_protocol(header_timeout: float) -> Callable[..., GuardedHttpToolsProtocol]:
    """The protocol with this header timeout (picklable, for uvicorn's worker processes)."""
    return functools.partial(GuardedHttpToolsProtocol, header_timeout=header_timeout)
