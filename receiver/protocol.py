"""The HTTP protocol under uvicorn, with the limits a public webhook endpoint needs.

uvicorn's httptools protocol puts no bound on how long a client may take to send its headers, nor
on how large they may grow. These are added here: a connection that has not finished a request's
headers within ``header_timeout`` seconds is answered 408 and closed, and headers over
``max_header_bytes`` (or ``max_headers`` lines) are answered 431 and closed, before the
application sees them. How long the body may take is the ingest endpoint's own limit.
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
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._header_count = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._header_count = 0
        self._arm_header_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        self._header_count += 1
        if self._header_bytes > self.max_header_bytes or self._header_count > self.max_headers:
            self._refuse(431, "Request Header Fields Too Large")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(
            self.header_timeout, self._refuse, 408, "Request Timeout"
        )

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, status: int, reason: str) -> None:
        """Answer with the JSON error shape and close; the request never reaches the app."""
        self._disarm_header_timer()
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
