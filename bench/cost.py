"""``python -m bench.cost N``: the cost of photohook's ingest application alone, in process.

64 concurrent clients send N callbacks (after N to warm up) straight into the ASGI application,
with a real SQLite file under it and no HTTP server or load generator beside it; it prints the
process's CPU time per request. Under ``valgrind --tool=callgrind`` the instruction count is the
same from run to run on a busy machine, so two runs with different N give the instructions per
request, a figure to compare changes by (see bench/README.md)::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.cost 400
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.cost 1400

With ``--bare`` the same clients call the bare Starlette application (a) instead; with
``--replace PARTS`` photohook with parts replaced as ``python -m bench.parts`` replaces them
(``router``, ``tallies``, ``records``, ``loop``, ``timeout``, comma separated).

With ``--delivery`` it queues N events routed to a loopback sink (its own process), then starts
a worker in this process and prints the CPU time per delivery; ``--callgrind`` turns callgrind's
counting on for the delivery alone (run valgrind with ``--instr-atstart=no``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message

from receiver import Settings, eventloop
from receiver.background import Background
from receiver.observability.logs import configure_logging
from receiver.observability.metrics import Metrics
from receiver.routing import Router
from receiver.web import app as web_app
from receiver.web.app import url_tokens

from . import apps, load
from .servers import UVICORN, Server

CLIENTS = 64


@contextlib.asynccontextmanager
async def _photohook(
    workdir: Path, log_level: str, config: str = ""
) -> AsyncIterator[tuple[Starlette, Settings, str]]:
    """photohook's application on ``workdir/photohook.db``, its lifespan running; with its
    settings and the Fotor hook path."""
    (workdir / "photohook.toml").write_text(config)
    settings = Settings.load(
        config_file=workdir / "photohook.toml",
        database_url=f"sqlite:///{workdir / 'photohook.db'}",
        environ={"PHOTOHOOK_LOG_LEVEL": log_level},
    )
    configure_logging(settings.log_level, settings.log_format)
    photohook = web_app.create_app(settings, worker=False)
    async with photohook.router.lifespan_context(photohook):
        tokens = await url_tokens(settings, photohook.state.store)
        yield photohook, settings, f"/hooks/fotor/{tokens.token('fotor')}"


async def _run(requests: int, bare: bool, log_level: str, database: Path | None) -> None:
    workdir = Path(tempfile.mkdtemp())
    if database is not None:
        shutil.copyfile(database, workdir / "photohook.db")  # each run starts from the same file
    async with _photohook(workdir, log_level) as (photohook, _, path):
        app: ASGIApp = apps.bare if bare else photohook
        statuses: dict[int, int] = {}

        async def client(first: int, prefix: str) -> None:
            for index in range(first, requests, CLIENTS):
                await _call(app, path, (load.BODY % f"{prefix}-{index}").encode(), statuses)

        async def send_all() -> None:
            prefix = secrets.token_hex(6)
            await asyncio.gather(*(client(first, prefix) for first in range(CLIENTS)))

        await send_all()  # warm-up
        statuses.clear()
        before, wall = os.times(), time.perf_counter()
        await send_all()
        after, wall = os.times(), time.perf_counter() - wall
    user, system = after.user - before.user, after.system - before.system
    print(
        f"{'bare' if bare else 'photohook'}: {requests} requests, "
        f"{(user + system) / requests * 1e6:.0f} us CPU ({user / requests * 1e6:.0f} user, "
        f"{system / requests * 1e6:.0f} system) and {wall / requests * 1e6:.0f} us wall each; "
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


async def _deliver(count: int, log_level: str, callgrind: bool) -> None:
    workdir = Path(tempfile.mkdtemp())
    sink = Server("sink", [*UVICORN, "--port", "{port}", "bench.apps:sink"], workdir, "sink")
    sink.start()
    try:
        config = (
            "[server]\nallow_private_destinations = true\n"
            f'[destinations.sink]\nurl = "{sink.base}/hook"\n[[routes]]\nto = ["sink"]\n'
        )
        async with _photohook(workdir, log_level, config) as (photohook, settings, path):
            statuses: dict[int, int] = {}
            await asyncio.gather(
                *(
                    _call(photohook, path, (load.BODY % f"delivery-{i}").encode(), statuses)
                    for i in range(count)
                )
            )
            metrics = Metrics(settings.sources, settings.destinations)
            worker = Background(
                settings, photohook.state.store, Router(settings.routes), metrics=metrics
            )
            _count_instructions(callgrind, True)
            cpu, wall = time.process_time(), time.perf_counter()
            await worker.start()
            labels = {"destination": "sink", "outcome": "delivered"}
            delivered = metrics.registry.get_sample_value
            # Rare looks at the counter, since they are counted too; nothing signals the end.
            while (delivered("photohook_delivery_attempts_total", labels) or 0) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            _count_instructions(callgrind, False)
            await worker.stop()
    finally:
        sink.stop()
    print(
        f"photohook worker: {count} deliveries, {cpu / count * 1e6:.0f} us CPU each "
        f"(within {wall:.1f} s, so up to 0.5 s of it waiting); callbacks {statuses}"
    )


def _count_instructions(callgrind: bool, on: bool) -> None:
    if callgrind:
        command = ["callgrind_control", "--instr", "on" if on else "off", str(os.getpid())]
        subprocess.run(command, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    parser.add_argument("requests", type=int, nargs="?", default=20000)
    parser.add_argument("--bare", action="store_true", help="the bare Starlette app (a) instead")
    parser.add_argument("--log-level", default="info", help="photohook's log level (info)")
    parser.add_argument(
        "--database",
        type=Path,
        help="ingest into a copy of this SQLite file (one bench.growth filled, say)",
    )
    parser.add_argument("--replace", default="", metavar="PARTS", help="as bench.parts does")
    parser.add_argument("--delivery", action="store_true", help="the worker's cost instead")
    parser.add_argument(
        "--callgrind", action="store_true", help="with --delivery: count the delivery alone"
    )
    args = parser.parse_args()
    if args.replace:
        from .parts import _replace_internals

        _replace_internals(set(args.replace.split(",")))
    if args.delivery:
        eventloop.run(_deliver(args.requests, args.log_level, args.callgrind))
    else:
        eventloop.run(_run(args.requests, args.bare, args.log_level, args.database))


if __name__ == "__main__":
    main()
