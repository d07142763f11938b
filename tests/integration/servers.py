"""Real servers on loopback for integration tests: uvicorn in a thread, and webhook sinks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.helpers import free_port


@contextmanager
def running(
    app: Any,
    *,
    lifespan: str = "on",
    certificate: Path | None = None,
    http: Any = "auto",
    root_path: str = "",
    access_log: bool = False,
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields its base URL. With
    ``certificate`` (a PEM file holding the key and the chain) it serves HTTPS, its URL naming
    the host ``localhost``; ``http`` is uvicorn's HTTP protocol (a class, or its name);
    ``root_path`` is uvicorn's ``--root-path``; ``access_log`` turns on uvicorn's access log
    (logger ``uvicorn.access``, at INFO)."""
    port = free_port()
    tls = {"ssl_certfile": certificate, "ssl_keyfile": certificate} if certificate else {}
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="info" if access_log else "warning",
        lifespan=lifespan,
        access_log=access_log,
        http=http,
        root_path=root_path,
        **tls,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"https://localhost:{port}" if certificate else f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


class PrefixProxy:
    """A reverse proxy that serves ``backend`` below ``prefix`` and strips it on the way (as
    nginx's ``location /prefix/ { proxy_pass http://backend/; }`` does), keeping the Host
    header; the backend learns of the prefix from its own ``root_path``."""

    _HOP = frozenset({"content-length", "transfer-encoding", "connection", "accept-encoding"})

    def __init__(self, prefix: str, backend: str) -> None:
        self.backend = backend
        methods = ["GET", "POST", "HEAD"]
        self.app = Starlette(
            routes=[Route(f"{prefix}/{{path:path}}", self._forward, methods=methods)]
        )

    async def _forward(self, request: Request) -> Response:
        url = f"{self.backend}/{request.path_params['path']}"
        if request.url.query:
            url += f"?{request.url.query}"
        headers = [(k, v) for k, v in request.headers.items() if k not in self._HOP]
        async with httpx.AsyncClient() as client:
            upstream = await client.request(
                request.method, url, headers=headers, content=await request.body()
            )
        response = Response(upstream.content, status_code=upstream.status_code)
        response.raw_headers.extend(
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in upstream.headers.multi_items()
            if name not in self._HOP and name != "content-encoding"
        )
        return response


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b"ok"


@dataclass
class Received:
    webhook_id: str | None
    headers: dict[str, str]
    body: bytes
    verified: bool | None
    at: float
    port: int  # the client's: which connection it came over

    def json(self) -> Any:
        return orjson.loads(self.body)


class Sink:
    """A downstream receiver: verifies each request with the standardwebhooks library, records
    it, and answers as ``script(n)`` says for the n-th request (from 0)."""

    def __init__(self, secret: str | None = None, script: Callable[[int], Reply] | None = None):
        self.secret = secret
        self.script = script or (lambda n: Reply())
        self.received: list[Received] = []
        self.in_flight = 0
        self.most_in_flight = 0  # the most requests it was answering at once
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST", "GET"])])

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        verified = None
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self._lock:
            number = len(self.received)
            self.received.append(
                Received(
                    headers.get("webhook-id"),
                    headers,
                    body,
                    verified,
                    time.monotonic(),
                    request.client.port if request.client else 0,
                )
            )
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            reply = self.script(number)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            return Response(reply.body, status_code=reply.status, headers=reply.headers)
        finally:
            with self._lock:
                self.in_flight -= 1

    @property
    def ids(self) -> list[str | None]:
        with self._lock:
            return [r.webhook_id for r in self.received]


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], within: float = 15) -> None:
    """Wait until ``predicate`` holds (polling), or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(0.02)
