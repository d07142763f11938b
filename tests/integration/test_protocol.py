"""photohook's HTTP protocol under a real uvicorn: header deadlines across keep-alive requests,
and answers sent without delaying or reordering any byte."""

from __future__ import annotations

import asyncio
import socket
import time

from starlette.types import Receive, Scope, Send

from receiver.web._protocol import guarded_protocol
from tests.integration.servers import running

TIMEOUT = 0.5
_LENGTH = (b"content-length", b"2")


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/`` answers ``ok``; ``/slow`` sends its head, then its body in two parts, 0.3 s later."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] != "/slow":
        await send({"type": "http.response.start", "status": 200, "headers": [_LENGTH]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(0.3)
    await send({"type": "http.response.body", "body": b"a" * 100_000, "more_body": True})
    await send({"type": "http.response.body", "body": b"b" * 100_000})


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _read_until(sock: socket.socket, marker: bytes, deadline: float = 5) -> bytes:
    data = b""
    sock.settimeout(deadline)
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _dechunk(data: bytes) -> bytes:
    """A chunked body's bytes."""
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return body
        body, data = body + data[:size], data[size + 2 :]


def test_each_keep_alive_request_gets_its_own_header_deadline() -> None:
    with running(_app, lifespan="off", http=guarded_protocol(TIMEOUT)) as base:
        sock = _connect(base)
        with sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert _read_until(sock, b"\r\n\r\nok").startswith(b"HTTP/1.1 200")
            # The second request begins before the connection's first deadline and ends its
            # headers after it, within its own: it is answered.
            time.sleep(TIMEOUT * 0.7)
            sock.sendall(b"GET / HTTP/1.1\r\n")
            time.sleep(TIMEOUT * 0.7)
            sock.sendall(b"Host: a\r\n\r\n")
            assert _read_until(sock, b"\r\n\r\nok").startswith(b"HTTP/1.1 200")
            # The third never ends its headers: 408 and closed, within its deadline.
            started = time.monotonic()
            sock.sendall(b"GET / HTTP/1.1\r\n")
            answer = _read_until(sock, b"\r\n\r\n")
            waited = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert b'"code":"request_timeout"' in answer + _read_until(sock, b"}}")
            assert TIMEOUT * 0.9 <= waited < TIMEOUT + 1.5
            assert sock.recv(1) == b""  # closed


def test_a_head_goes_out_before_a_late_body_and_every_byte_in_order() -> None:
    with running(_app, lifespan="off", http=guarded_protocol(10)) as base:
        sock = _connect(base)
        with sock:
            started = time.monotonic()
            sock.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
            head = _read_until(sock, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert time.monotonic() - started < 0.25  # not kept back until the body, 0.3 s later
            rest = head.partition(b"\r\n\r\n")[2]
            while not rest.endswith(b"0\r\n\r\n"):
                chunk = sock.recv(65536)
                assert chunk, "closed before the end of the body"
                rest += chunk
        assert _dechunk(rest) == b"a" * 100_000 + b"b" * 100_000
