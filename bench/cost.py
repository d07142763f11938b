"""``python -m bench.cost N``: the cost of photohook's ingest application alone, in process.

64 concurrent clients send N callbacks (after N to warm up) straight into the ASGI application,
with a real SQLite file under it and no HTTP server or load generator beside it; it prints the
process's CPU time per request. Under ``valgrind --tool=callgrind`` the instruction count is the
same from run to run on a busy machine, so two runs with different N give the instructions per
request, a figure to compare changes by (see bench/README.md)::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.cost 400
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.cost 1400

With ``--bare`` the same clients call the bare Starlette application (a) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message

from receiver import Settings, create_app, eventloop
from receiver.app import url_tokens
from receiver.logs import configure_logging

from . import apps, load

CLIENTS = 64


async def _run(requests: int, bare: bool, log_level: str) -> None:
    workdir = Path(tempfile.mkdtemp())
    settings = Settings.load(
        database_url=f"sqlite:///{workdir / 'photohook.db'}",
        environ={"PHOTOHOOK_LOG_LEVEL": log_level},
    )
    configure_logging(settings.log_level, settings.log_format)
    photohook = create_app(settings, worker=False)
    async with photohook.router.lifespan_context(photohook):
        tokens = await url_tokens(settings, photohook.state.store)
        app: ASGIApp = apps.bare if bare else photohook
        path = f"/hooks/fotor/{tokens.token('fotor')}"
        statuses: dict[int, int] = {}

        async def client(first: int, prefix: str) -> None:
            for index in range(first, requests, CLIENTS):
                await _call(app, path, (load.BODY % f"{prefix}-{index}").encode(), statuses)

        async def send_all() -> None:
            prefix = secrets.token_hex(6)
            await asyncio.gather(*(client(first, prefix) for first in range(CLIENTS)))

        await send_all()  # warm-up
        statuses.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        await send_all()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{'bare' if bare else 'photohook'}: {requests} requests, "
        f"{cpu / requests * 1e6:.0f} us CPU and {wall / requests * 1e6:.0f} us wall each; "
        f"statuses {statuses}"
    )


async def _call(app: ASGIApp, path: str, body: bytes, statuses: dict[int, int]) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # never: the body came whole
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    await app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    parser.add_argument("requests", type=int, nargs="?", default=20000)
    parser.add_argument("--bare", action="store_true", help="the bare Starlette app (a) instead")
    parser.add_argument("--log-level", default="info", help="photohook's log level (info)")
    args = parser.parse_args()
    eventloop.run(_run(args.requests, args.bare, args.log_level))


if __name__ == "__main__":
    main()
