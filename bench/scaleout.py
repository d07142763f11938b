"""Scale-out on PostgreSQL (``--postgres URL``): ingest with one and two receiver processes,
delivery with one and three worker processes, in a schema of its own that is dropped after."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx

from . import load
from .servers import PHOTOHOOK, UVICORN, Server


@dataclass
class ScaleRow:
    name: str
    rate: float
    p99_ms: float
    errors: int


def _in_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("search_path", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[ScaleRow], dict[int, float]]:
    """The ingest rows (1 and 2 receivers) and deliveries/s by number of workers."""
    sink = Server("pg-sink", [*UVICORN, "--port", "{port}", "bench.apps:sink"], workdir, "sink")
    sink.start()
    try:
        return _run(args, workdir, sink.base)
    finally:
        sink.stop()


def _run(
    args: argparse.Namespace, workdir: Path, sink_base: str
) -> tuple[list[ScaleRow], dict[int, float]]:
    postgres: str = args.postgres
    schema = f"photohook_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(postgres, f"CREATE SCHEMA {schema}"))
    url = _in_schema(postgres, schema)
    where = workdir / "postgres"
    where.mkdir()
    env_file = where / "photohook.toml"
    env_file.write_text(
        "[server]\nallow_private_destinations = true\n"
        f'[destinations.sink]\nurl = "{sink_base}/hook"\nmax_in_flight = 24\n'
        '[[routes]]\nto = ["sink"]\nbusiness_id = ["delivery-*"]\n'
    )
    command = [*PHOTOHOOK, "serve", "--no-worker", "--port", "{port}"]
    env = {"PHOTOHOOK_DATABASE_URL": url}
    try:
        rows = [
            _ingest(
                args,
                [Server("pg-1", command, where, "photohook", env)],
                "PostgreSQL, 1 receiver",
            ),
            _ingest(
                args,
                [Server(f"pg-2-{i}", command, where, "photohook", env) for i in range(2)],
                "PostgreSQL, 2 receivers",
            ),
        ]
        rates = {n: _deliver(args, where, url, sink_base, n) for n in (1, 3)}
    finally:
        asyncio.run(_admin(postgres, f"DROP SCHEMA {schema} CASCADE"))
    return rows, rates


def _ingest(args: argparse.Namespace, servers: list[Server], name: str) -> ScaleRow:
    """Every receiver loaded at once, the connections split between them; rates summed."""
    try:
        for s in servers:
            s.start()
        urls = [s.url() for s in servers]
        share = args.connections // len(servers)
        totals, p99s, errors = [], [], 0
        for _ in range(args.rounds + 1):  # the first round warms up
            results: list[load.Load] = []

            def measure(url: str, into: list[load.Load] = results) -> None:
                into.append(load.run(url, seconds=args.seconds, connections=share))

            threads = [threading.Thread(target=measure, args=(u,)) for u in urls]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            totals.append(sum(r.rate for r in results))
            p99s.append(max(r.p99_ms for r in results))
            errors += sum(r.errors for r in results)
        return ScaleRow(name, statistics.median(totals[1:]), statistics.median(p99s[1:]), errors)
    finally:
        for s in servers:
            s.stop()


def _deliver(
    args: argparse.Namespace, where: Path, url: str, sink_base: str, workers: int
) -> float:
    """Queue N routed events with no worker running, then time ``workers`` processes sending
    them all."""
    count: int = args.deliveries
    receiver = Server(
        "pg-queue",
        [*PHOTOHOOK, "serve", "--no-worker", "--port", "{port}"],
        where,
        "photohook",
        {"PHOTOHOOK_DATABASE_URL": url},
    )
    receiver.start()
    try:
        target = receiver.url()
        tag = secrets.token_hex(4)

        async def queue() -> None:
            async with httpx.AsyncClient(limits=httpx.Limits(max_connections=16)) as client:
                bodies = iter(range(count))

                async def one() -> None:
                    for i in bodies:
                        body = json.loads(load.BODY % f"w{workers}-{tag}-{i}")
                        body["businessId"] = "delivery-bench"
                        assert (await client.post(target, json=body)).status_code == 200

                await asyncio.gather(*(one() for _ in range(16)))

        asyncio.run(queue())
    finally:
        receiver.stop()

    def delivered() -> int:
        return int(httpx.get(f"{sink_base}/count").text)

    before = delivered()
    processes = [
        Server(f"worker-{n}", [*PHOTOHOOK, "worker", "--db", url], where, "photohook")
        for n in range(workers)
    ]
    for process in processes:
        process.launch()
    try:
        # Timed from the first arrival, as for SQLite: start-up is not delivery.
        deadline = time.monotonic() + 600
        while (first := delivered() - before) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        started = time.perf_counter()
        while delivered() - before < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers delivered too little in 600 s")
            time.sleep(0.01)
        return (count - first) / (time.perf_counter() - started)
    finally:
        for process in processes:
            process.stop()
