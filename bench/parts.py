"""``python -m bench.parts``: what each part of photohook's ingest costs in throughput.

Runs, in alternated rounds under the benchmark's load (64 connections), the bare ceiling (a),
group commit alone (f), ``photohook serve`` as it ships (c), and ``photohook serve`` with parts
of the callback path replaced by nothing:

- ``no access line``: ``PHOTOHOOK_LOG_LEVEL=warning``;
- ``no storing``: the store answers at once with the events' own ids (no SQL, no writer thread),
  everything before it unchanged: authentication, parsing, validation, ids, the receipt;
- ``no storing, no access line``: both;
- ``answer after the body``: the callback endpoint reads the body and answers 200, nothing else
  (what photohook's plain-ASGI path costs under uvicorn, with none of its work).

``--internals`` runs instead, beside (a) and (c), photohook with one of its speed-minded internals
replaced by what the libraries offer, to see what each still buys:

- ``Starlette's router``: ``/hooks`` routed by Starlette through the middleware stack;
- ``prometheus counters``: prometheus_client's ``Counter`` and ``Histogram``;
- ``a record per line``: every access line a ``LogRecord`` written at once;
- ``no gc.freeze``: start-up objects left in every full collection;
- ``an event loop per commit``: the SQLite writer runs each transaction on an event loop of its
  thread instead of driving the coroutine by hand;
- ``asyncio.timeout``: a callback's body and commit deadlines through ``asyncio.timeout``, moved
  for the commit, instead of ``RequestDeadline``'s one timer.

A variant's ratio is a bound on what removing that part could ever give: ``no storing`` is what
any faster store (another engine, a writer process) could reach at best. It replaces photohook's
internals by name, so it measures this version of the code and is not a supported interface.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from . import load
from .servers import PYTHON, UVICORN, Server, settle

VARIANTS: dict[str, tuple[str, str]] = {
    # name: (parts replaced, photohook's log level)
    "c. photohook serve": ("", "info"),
    "c, no access line": ("", "warning"),
    "c, no storing": ("store", "info"),
    "c, no storing, no access line": ("store", "warning"),
    "c, answer after the body": ("answer", "info"),
}
INTERNALS: dict[str, tuple[str, str]] = {
    "c. photohook serve": ("", "info"),
    "c, Starlette's router": ("router", "info"),
    "c, prometheus counters": ("tallies", "info"),
    "c, a record per line": ("records", "info"),
    "c, no gc.freeze": ("freeze", "info"),
    "c, an event loop per commit": ("loop", "info"),
    "c, asyncio.timeout": ("timeout", "info"),
}


def serve(parts: str, argv: list[str]) -> int:
    """``photohook serve`` with ``parts`` (comma separated) replaced by nothing."""
    from receiver.cli.parser import main
    from receiver.store import records, sqlstore
    from receiver.web import _request, ingest

    replaced = set(filter(None, parts.split(",")))
    if "store" in replaced:

        async def store(self: object, receipt: records.Receipt) -> records.Stored:
            ids = tuple(new.event.id for new in receipt.events)
            return records.Stored(ids, ids)

        sqlstore.SQLStore.store = store  # type: ignore[method-assign]
    if "answer" in replaced:

        async def answer(self: object, scope: object, receive: object, send: object) -> None:
            await _request.read_body(receive, None, 1 << 20)  # type: ignore[arg-type]
            headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
            await send({"type": "http.response.body", "body": b'{"ok":true}'})  # type: ignore[operator]

        ingest.Ingest.__call__ = answer  # type: ignore[method-assign]
    _replace_internals(replaced)
    return main(["serve", *argv])


def _replace_internals(replaced: set[str]) -> None:
    import asyncio
    import threading
    from typing import Any

    from receiver import eventloop
    from receiver.observability import logs, metrics
    from receiver.web import app as web_app

    if "router" in replaced:
        from starlette.applications import Starlette
        from starlette.routing import Route

        create_app = web_app.create_app
        request_log = logs.RequestLog.__call__

        def routed_app(*args: Any, **kwargs: Any) -> Any:
            app = create_app(*args, **kwargs)
            hooks = app._hooks  # type: ignore[attr-defined]
            app.router.routes[:0] = [
                Route("/hooks/{source}", hooks),
                Route("/hooks/{source}/{token}", hooks),
            ]
            return app

        async def log_others(self: Any, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/hooks/"):
                await self.app(scope, receive, send)  # ingest logs its own line
            else:
                await request_log(self, scope, receive, send)

        web_app.create_app = routed_app
        from receiver.web import server

        server.create_app = routed_app  # type: ignore[attr-defined]
        web_app._App.__call__ = Starlette.__call__  # type: ignore[method-assign]
        logs.RequestLog.__call__ = log_others  # type: ignore[method-assign]
    if "tallies" in replaced:
        from prometheus_client import Counter, Histogram

        class Tally:
            def __init__(self, name: str, doc: str, labelnames: Any, registry: Any) -> None:
                self._counter = Counter(name, doc, labelnames, registry=registry)

            def inc(self, labels: tuple[str, ...], amount: float = 1) -> None:
                self._counter.labels(*labels).inc(amount)

        class TallyHistogram:
            def __init__(
                self, name: str, doc: str, labelnames: Any, buckets: Any, registry: Any
            ) -> None:
                self._histogram = Histogram(
                    name, doc, labelnames, registry=registry, buckets=buckets
                )

            def observe(self, labels: tuple[str, ...], value: float) -> None:
                self._histogram.labels(*labels).observe(value)

        metrics.Tally = Tally  # type: ignore[attr-defined, assignment]
        metrics.TallyHistogram = TallyHistogram  # type: ignore[attr-defined, assignment]
    if "records" in replaced:
        logs._sole_output = lambda logger: None
    if "freeze" in replaced:
        eventloop.freeze_startup_objects = lambda: None
    if "loop" in replaced:
        from receiver.store import sqlite_writer

        local = threading.local()

        def drive(work: Any) -> Any:
            loop = getattr(local, "loop", None)
            if loop is None:
                loop = local.loop = asyncio.new_event_loop()
            return loop.run_until_complete(work)

        sqlite_writer._drive = drive
    if "timeout" in replaced:
        from receiver.web import ingest

        class Timeout:
            """RequestDeadline's interface over ``asyncio.timeout_at``, as it was."""

            def __init__(self, when: float, check_at: float) -> None:
                self._timeout = asyncio.timeout_at(when)

            async def __aenter__(self) -> Any:
                await self._timeout.__aenter__()
                return self

            async def __aexit__(self, *exc: Any) -> None:
                await self._timeout.__aexit__(*exc)

            def move(self, when: float) -> None:
                self._timeout.reschedule(when)

            def expired(self) -> bool:
                return self._timeout.expired()

        ingest.RequestDeadline = Timeout  # type: ignore[attr-defined, assignment]


def run(rounds: int, seconds: float, workdir: Path, variants: dict[str, tuple[str, str]]) -> None:
    servers = [
        Server(
            "a. bare Starlette", [*UVICORN, "--port", "{port}", "bench.apps:bare"], workdir, "bare"
        ),
        Server(
            "f. group commit alone",
            [*UVICORN, "--port", "{port}", "bench.apps:group_commit"],
            workdir,
            "group",
        ),
    ]
    if variants is INTERNALS:
        del servers[1]
    for index, (name, (parts, level)) in enumerate(variants.items()):
        where = workdir / f"photohook-{index}"
        where.mkdir()
        servers.append(
            Server(
                name,
                [PYTHON, "-m", "bench.parts", "--serve", parts, "--port", "{port}"],
                where,
                "photohook",
                env={"PHOTOHOOK_LOG_LEVEL": level},
            )
        )
    results: dict[str, list[tuple[load.Load, float]]] = {s.name: [] for s in servers}
    try:
        for server in servers:
            server.start()
        urls = {server.name: server.url() for server in servers}
        for server in servers:  # warm-up
            load.run(urls[server.name], seconds=2, connections=64)
        for round_ in range(rounds):
            for server in servers:
                settle(servers)
                before = server.cpu_seconds()
                measured = load.run(urls[server.name], seconds=seconds, connections=64)
                cpu = (server.cpu_seconds() - before) / max(measured.requests, 1) * 1e6
                results[server.name].append((measured, cpu))
                print(f"round {round_ + 1}: {server.name}: {measured.rate:,.0f} req/s", flush=True)
    finally:
        for server in servers:
            server.stop()
    ceiling = statistics.median(m.rate for m, _ in results[servers[0].name])
    print("\n| server | req/s | ratio to (a) | p99 ms | CPU µs per request | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, runs in results.items():
        rate = statistics.median(m.rate for m, _ in runs)
        p99 = statistics.median(m.p99_ms for m, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        errors = sum(m.errors for m, _ in runs)
        print(f"| {name} | {rate:,.0f} | {rate / ceiling:.2f} | {p99:.1f} | {cpu:.0f} | {errors} |")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parts", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument(
        "--internals", action="store_true", help="replace the speed-minded internals instead"
    )
    parser.add_argument("--serve", metavar="PARTS", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.serve is not None:
        return serve(args.serve, rest)
    with tempfile.TemporaryDirectory(prefix="photohook-parts-") as workdir:
        run(args.rounds, args.seconds, Path(workdir), INTERNALS if args.internals else VARIANTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
