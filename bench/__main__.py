"""``python -m bench``: photohook's ingest and delivery against their ceilings, in one run.

Each server runs as its own process under the same uvicorn settings; runs alternate across rounds
and the medians are reported, so that a noisy machine shifts every column alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from receiver import eventloop

from . import growth, load, scaleout
from .servers import PHOTOHOOK, ROOT, UVICORN, Server, settle, webhook_peer


@dataclass
class Row:
    name: str
    rate: float
    p50_ms: float
    p99_ms: float
    ratio: float
    cpu: float
    peak_rss_mib: float
    errors: int


def ingest(args: argparse.Namespace, workdir: Path) -> tuple[list[Row], str]:
    sink = Server("sink", [*UVICORN, "--port", "{port}", "bench.apps:sink"], workdir, "sink")
    sink.start()
    (workdir / "routed").mkdir()
    (workdir / "routed" / "photohook.toml").write_text(
        "[server]\nallow_private_destinations = true\n"
        f'[destinations.sink]\nurl = "{sink.base}/hook"\n[[routes]]\nto = ["sink"]\n'
    )
    (workdir / "plain").mkdir()
    grown: list[Server] = []
    if args.growth:
        (workdir / "grown").mkdir()
        growth.fill(workdir / "grown", args.growth, PHOTOHOOK)
        grown = [
            Server(
                f"e. photohook serve, no routes, {args.growth:,} events stored",
                [*PHOTOHOOK, "serve", "--port", "{port}"],
                workdir / "grown",
                "photohook",
            )
        ]
    peer = None if args.no_peer else webhook_peer(workdir)
    if peer is None and not args.no_peer:
        print("no adnanh/webhook here (apt-get install webhook): its row is left out")
    servers = [
        Server(
            "a. bare Starlette (ceiling)",
            [*UVICORN, "--port", "{port}", "bench.apps:bare"],
            workdir,
            "bare",
        ),
        *([peer] if peer is not None else []),
        Server(
            "b. aiosqlite, a commit per request",
            [*UVICORN, "--port", "{port}", "bench.apps:naive"],
            workdir,
            "naive",
        ),
        Server(
            "c. photohook serve, no routes",
            [*PHOTOHOOK, "serve", "--port", "{port}"],
            workdir / "plain",
            "photohook",
        ),
        Server(
            "d. photohook serve, one route",
            [*PHOTOHOOK, "serve", "--port", "{port}"],
            workdir / "routed",
            "photohook",
        ),
        *grown,
        Server(
            "f. group commit alone (plain ASGI, one COMMIT per batch)",
            [*UVICORN, "--port", "{port}", "bench.apps:group_commit"],
            workdir,
            "group",
        ),
    ]
    results: dict[str, list[tuple[load.Load, float]]] = {s.name: [] for s in servers}
    tool = ""
    try:
        for server in servers:
            server.start()
        urls = {server.name: server.url() for server in servers}
        for server in servers:  # warm-up
            load.run(urls[server.name], seconds=args.warmup, connections=args.connections)
        for _ in range(args.rounds):
            for server in servers:
                # (d) goes on delivering its backlog after its run: no run shares the machine
                # with that, or with anything else the last one left.
                settle([*servers, sink])
                cpu = server.cpu_seconds()
                measured = load.run(
                    urls[server.name], seconds=args.seconds, connections=args.connections
                )
                tool = measured.tool
                results[server.name].append(
                    (measured, (server.cpu_seconds() - cpu) / measured.seconds)
                )
        rows = []
        ceiling = statistics.median(m.rate for m, _ in results[servers[0].name])
        for server in servers:
            runs = results[server.name]
            rate = statistics.median(m.rate for m, _ in runs)
            rows.append(
                Row(
                    server.name,
                    rate,
                    statistics.median(m.p50_ms for m, _ in runs),
                    statistics.median(m.p99_ms for m, _ in runs),
                    rate / ceiling,
                    statistics.median(cpu for _, cpu in runs),
                    server.peak_rss_mib(),
                    sum(m.errors for m, _ in runs),
                )
            )
        return rows, tool
    finally:
        for server in servers:
            server.stop()
        sink.stop()


@dataclass
class DeliveryResult:
    events: int
    photohook_rate: float
    ceiling_rate: float

    @property
    def ratio(self) -> float:
        return self.photohook_rate / self.ceiling_rate


#: The worker's max_in_flight and the httpx loop's concurrency, the same for both. Eight, not the
#: default 16: httpx's pool slows as it grows (it looks at every connection on every request),
#: and the ceiling is the best a plain loop does.
DELIVERY_CONCURRENCY = 8


def delivery(args: argparse.Namespace, workdir: Path) -> DeliveryResult:
    """N events queued, then delivered by a worker; beside a plain httpx loop to the same sink.
    Rounds alternate the two; medians."""
    sink = Server(
        "delivery-sink", [*UVICORN, "--port", "{port}", "bench.apps:sink"], workdir, "sink"
    )
    sink.start()
    rates, ceilings = [], []
    try:
        for round_ in range(args.rounds):
            bodies = [
                json.loads(load.BODY % f"delivery-{round_}-{i}") for i in range(args.deliveries)
            ]
            rates.append(_worker_rate(bodies, workdir / f"delivery-{round_}", sink))
            seconds = eventloop.run(_post_all(f"{sink.base}/hook", bodies, DELIVERY_CONCURRENCY))
            ceilings.append(args.deliveries / seconds)
    finally:
        sink.stop()
    return DeliveryResult(args.deliveries, statistics.median(rates), statistics.median(ceilings))


async def _post_all(target: str, bodies: list[dict[str, object]], concurrency: int) -> float:
    """POST every body, ``concurrency`` at a time, through one httpx client; the seconds taken."""
    import asyncio

    queue = iter(bodies)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one() -> None:
            for body in queue:
                assert (await client.post(target, json=body)).status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        return time.perf_counter() - started


def _worker_rate(bodies: list[dict[str, object]], where: Path, sink: Server) -> float:
    """Queue an event for each body, routed to ``sink`` (with the worker off), then time a
    ``photohook worker`` delivering them."""
    count = len(bodies)
    where.mkdir()
    (where / "photohook.toml").write_text(
        "[server]\nallow_private_destinations = true\n"
        f'[destinations.sink]\nurl = "{sink.base}/hook"\nmax_in_flight = {DELIVERY_CONCURRENCY}\n'
        '[[routes]]\nto = ["sink"]\n'
    )
    receiver = Server(
        "receiver", [*PHOTOHOOK, "serve", "--no-worker", "--port", "{port}"], where, "photohook"
    )
    receiver.start()
    try:
        url = receiver.url()
        eventloop.run(_post_all(url, bodies, 16))
    finally:
        receiver.stop()

    already = int(httpx.get(f"{sink.base}/count").text)

    def delivered() -> int:
        return int(httpx.get(f"{sink.base}/count").text) - already

    worker = Server("worker", [*PHOTOHOOK, "worker"], where, "photohook")
    worker.launch()
    try:
        # Timed from the first arrival: the worker's start-up (imports, opening the database)
        # is not delivery.
        deadline = time.monotonic() + 600
        while (first := delivered()) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        started = time.perf_counter()
        while delivered() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker delivered {delivered()} of {count} in 600 s")
            time.sleep(0.01)
        return (count - first) / (time.perf_counter() - started)
    finally:
        worker.stop()


@dataclass
class LatencyResult:
    layout: str
    rate: float
    callbacks: int
    delivered: int
    p50_ms: float
    p99_ms: float


def latency(args: argparse.Namespace, workdir: Path, *, split: bool) -> LatencyResult:
    """End to end, callback acknowledged to sink received, at a fixed rate: with the worker in
    ``serve``'s process, or (``split``) in a ``photohook worker`` beside ``serve --no-worker``, as
    the Procfile runs them."""
    import asyncio

    layout = "serve --no-worker + photohook worker" if split else "serve"
    where = workdir / ("latency-split" if split else "latency")
    where.mkdir()
    sink = Server(
        "latency-sink", [*UVICORN, "--port", "{port}", "bench.apps:latency_sink"], where, "sink"
    )
    sink.start()
    (where / "photohook.toml").write_text(
        "[server]\nallow_private_destinations = true\n"
        f'[destinations.sink]\nurl = "{sink.base}/hook"\n[[routes]]\nto = ["sink"]\n'
    )
    no_worker = ["--no-worker"] if split else []
    server = Server(
        "photohook", [*PHOTOHOOK, "serve", *no_worker, "--port", "{port}"], where, "photohook"
    )
    worker = Server("worker", [*PHOTOHOOK, "worker"], where, "photohook")
    try:
        server.start()
        if split:
            worker.launch()
            time.sleep(2)  # its start-up
        acknowledged = asyncio.run(
            load.paced(server.url(), rate=args.rate, seconds=args.latency_seconds, connections=16)
        )
        deadline = time.monotonic() + 30
        arrivals: dict[str, float] = {}
        while time.monotonic() < deadline:
            arrivals = httpx.get(f"{sink.base}/arrivals").json()
            if len(arrivals) >= len(acknowledged):
                break
            time.sleep(0.2)
    finally:
        worker.stop()
        server.stop()
        sink.stop()
    delays = sorted(max(0.0, arrivals[t] - acknowledged[t]) for t in acknowledged if t in arrivals)
    return LatencyResult(
        layout,
        args.rate,
        len(acknowledged),
        len(delays),
        delays[len(delays) // 2] * 1000 if delays else 0.0,
        delays[int(len(delays) * 0.99)] * 1000 if delays else 0.0,
    )


@dataclass
class SoakResult:
    seconds: float
    rate: float
    rss_mib: list[float]

    @property
    def growth_mib(self) -> float:
        return self.rss_mib[-1] - self.rss_mib[0] if self.rss_mib else 0.0


def soak(args: argparse.Namespace, workdir: Path) -> SoakResult:
    """RSS of photohook (no routes) sampled every 10 s under a steady load."""
    import asyncio
    import threading

    where = workdir / "soak"
    where.mkdir()
    server = Server("soak", [*PHOTOHOOK, "serve", "--port", "{port}"], where, "photohook")
    samples: list[float] = []
    try:
        server.start()
        url = server.url()
        sender = threading.Thread(
            target=lambda: asyncio.run(
                load.paced(url, rate=args.rate, seconds=args.soak, connections=16)
            )
        )
        sender.start()
        while sender.is_alive():
            for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():  # type: ignore[union-attr]
                if line.startswith("VmRSS:"):
                    samples.append(int(line.split()[1]) / 1024)
            sender.join(10)
    finally:
        server.stop()
    return SoakResult(args.soak, args.rate, samples)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured run (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up per server (2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating servers (3)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections (64)")
    parser.add_argument("--deliveries", type=int, default=3000, help="events delivered (3000)")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="callbacks/s for latency and soak (500)"
    )
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="the latency run (10)")
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also sample RSS through a soak this long (e.g. 600)",
    )
    parser.add_argument(
        "--growth",
        type=int,
        default=0,
        metavar="N",
        help="also run (e): photohook on a database already holding N events (e.g. 1000000)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also measure PostgreSQL: 1 and 2 receivers, 1 and 3 workers (e.g. "
        "postgresql://postgres@127.0.0.1:5432/test); a schema of its own is dropped after",
    )
    parser.add_argument(
        "--no-peer", action="store_true", help="leave out adnanh/webhook (the peer, p)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="where results go")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(temporary)
        rows, tool = ingest(args, workdir)
        delivered = delivery(args, workdir)
        latencies = [latency(args, workdir, split=split) for split in (False, True)]
        soaked = soak(args, workdir) if args.soak else None
        scaled = scaleout.run(args, workdir) if args.postgres else None

    date = datetime.now(UTC).strftime("%Y-%m-%d")
    commit = source_commit()
    header = (
        f"# photohook benchmark, {date}\n\n"
        f"Commit {commit}.\n\n"
        f"{os.cpu_count()} cores; load by {tool}, {args.connections} connections, "
        f"{args.rounds} rounds of {args.seconds:g} s after {args.warmup:g} s of warm-up, medians, "
        "each run started once every server was idle; "
        "~400-byte Fotor bodies with unique task ids; every photohook 200 is durable "
        "(SQLite WAL, synchronous=FULL).\n\n"
    )
    table = [
        "| server | req/s | p50 ms | p99 ms | ratio to (a) | server CPU | peak RSS MiB | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        table.append(
            f"| {row.name} | {row.rate:,.0f} | {row.p50_ms:.1f} | {row.p99_ms:.1f} | "
            f"{row.ratio:.2f} | {row.cpu:.0%} | {row.peak_rss_mib:.0f} | {row.errors} |"
        )
    deliveries = (
        f"\n\n## Delivery\n\n{delivered.events} queued events delivered by `photohook worker` to a "
        f"loopback sink: {delivered.photohook_rate:,.0f} deliveries/s (timed from the first "
        "arrival, so the worker's start-up is left out); a plain httpx loop posting the same "
        f"bodies, {DELIVERY_CONCURRENCY} at a time (the worker's `max_in_flight` too), on the same "
        f"event loop: {delivered.ceiling_rate:,.0f}/s; ratio {delivered.ratio:.2f} (medians of "
        f"{args.rounds} rounds alternating the two).\n"
    )
    for measured in latencies:
        deliveries += (
            f"\nEnd to end (callback acknowledged to sink received), `{measured.layout}`, "
            f"{measured.callbacks} callbacks at {measured.rate:g}/s with one route: p50 "
            f"{measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms ({measured.delivered} "
            "delivered).\n"
        )
    if soaked is not None:
        deliveries += (
            f"\n## Soak\n\n{soaked.seconds:g} s at {soaked.rate:g} callbacks/s, RSS sampled every "
            f"10 s: from {soaked.rss_mib[0]:.0f} to {soaked.rss_mib[-1]:.0f} MiB, at most "
            f"{max(soaked.rss_mib):.0f} MiB.\n"
        )
    if scaled is not None:
        pg_rows, pg_rates = scaled
        sqlite_rate = _row(rows, "c.").rate
        deliveries += (
            "\n## PostgreSQL\n\nThe same load on photohook with no routes against PostgreSQL "
            "(`serve --no-worker`; with two receivers each takes half the connections, rates "
            "summed), beside (c) on SQLite:\n\n"
            "| receivers | req/s | p99 ms | ratio to (c) | errors |\n"
            "|---|---:|---:|---:|---:|\n"
        )
        for pg in pg_rows:
            deliveries += (
                f"| {pg.name} | {pg.rate:,.0f} | {pg.p99_ms:.1f} | {pg.rate / sqlite_rate:.2f} |"
                f" {pg.errors} |\n"
            )
        deliveries += (
            f"\nDelivery from PostgreSQL, {args.deliveries} queued events, max_in_flight 24 across "
            "all workers: "
            + ", ".join(f"{n} worker{'s' * (n > 1)}: {r:,.0f}/s" for n, r in pg_rates.items())
            + ".\n"
        )
    report = header + "\n".join(table) + "\n\n" + _summary(rows, args.connections) + deliveries
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = _unused_stem(args.out, date)
    (args.out / f"{stem}.md").write_text(report)
    (args.out / f"{stem}.json").write_text(
        json.dumps(
            {
                "date": date,
                "commit": commit,
                "tool": tool,
                "settings": {k: str(v) for k, v in vars(args).items() if k != "out"},
                "ingest": [asdict(row) for row in rows],
                "durable_ingest": _ratios(rows),
                "delivery": asdict(delivered) | {"ratio": delivered.ratio},
                "latency": [asdict(measured) for measured in latencies],
                "postgres": None
                if scaled is None
                else {
                    "ingest": [asdict(row) for row in scaled[0]],
                    "deliveries_per_second_by_workers": scaled[1],
                },
            },
            indent=2,
        )
    )
    print(f"written to {args.out / stem}.md and .json")


def _row(rows: list[Row], prefix: str) -> Row:
    return next(row for row in rows if row.name.startswith(prefix))


def _ratios(rows: list[Row]) -> dict[str, float | None]:
    """photohook's durable ingest (c) against the ceiling (a) and the peer (p), this run only."""
    durable, ceiling = _row(rows, "c."), _row(rows, "a.")
    peer = next((row for row in rows if row.name.startswith("p.")), None)
    return {
        "to_ceiling": durable.rate / ceiling.rate,
        "to_peer": durable.rate / peer.rate if peer is not None else None,
        "p99_ms": durable.p99_ms,
    }


def _summary(rows: list[Row], connections: int) -> str:
    ratios = _ratios(rows)
    peer = (
        f", {ratios['to_peer']:.2f} of adnanh/webhook's (p)"
        if ratios["to_peer"] is not None
        else " (adnanh/webhook was not installed)"
    )
    return (
        f"Durable ingest (c): {ratios['to_ceiling']:.2f} of the bare ceiling's rate (a){peer}; "
        f"p99 {ratios['p99_ms']:.1f} ms at {connections} connections. The machine is shared: "
        "only ratios between the rows of one run, measured in the same alternated rounds, mean "
        "anything; absolute figures do not carry to another run.\n"
    )


def source_commit() -> str:
    """The git commit measured, with ``-dirty`` when tracked files differ from it, so that a
    result can be traced to its code; ``unknown`` outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if changed else head


def _unused_stem(folder: Path, date: str) -> str:
    """``date``, or ``date-2``, ``date-3``...: a later run the same day overwrites nothing."""
    stem, number = date, 1
    while (folder / f"{stem}.md").exists() or (folder / f"{stem}.json").exists():
        number += 1
        stem = f"{date}-{number}"
    return stem


if __name__ == "__main__":
    main()
