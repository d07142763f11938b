"""Scale-out on PostgreSQL: two receivers and three workers, as separate processes, on one
database; the same callback sent to both receivers at once; a worker SIGKILLed mid-run."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest

from tests.e2e.process import Serve, Worker, run_cli
from tests.integration.servers import Reply, Sink, running

from .helpers import fotor_body, sink_config, wait_until

TASKS = 4500  # 4,000 reach completed in one callback, 500 go in_progress then completed
ORDERED = 500
MAX_IN_FLIGHT = 16


@pytest.mark.timeout(300)
def test_two_receivers_three_workers_one_database(tmp_path: Path, postgres_url: str) -> None:
    env = {"PHOTOHOOK_DATABASE_URL": postgres_url}
    sink = Sink(script=lambda n: Reply(delay=0.002))
    with running(sink.app, lifespan="off") as sink_url:
        (tmp_path / "photohook.toml").write_text(sink_config(sink_url, max_in_flight=MAX_IN_FLIGHT))
        assert run_cli("migrate", cwd=tmp_path, env=env).returncode == 0
        receivers = [Serve(tmp_path, "--no-worker", "--no-migrate", env=env) for _ in range(2)]
        workers = [Worker(tmp_path, "--no-migrate", env=env) for _ in range(3)]
        try:
            for process in (*receivers, *workers):
                process.start()
            urls = [
                run_cli("url", "fotor", "--base-url", r.base_url, cwd=tmp_path, env=env).stdout
                for r in receivers
            ]
            first = [fotor_body(i, status=0 if i < ORDERED else 1) for i in range(TASKS)]
            then = [fotor_body(i, status=1) for i in range(ORDERED)]
            kill: dict[str, int] = {}
            killer = threading.Thread(target=_kill_when, args=(sink, 1500, workers[0], kill))
            killer.start()
            statuses: Counter[int] = Counter()
            asyncio.run(_send(urls, first, statuses))
            asyncio.run(_send(urls, then, statuses))
            killer.join(60)
            assert not killer.is_alive()
            sent = len(first) + len(then)
            assert statuses == Counter({200: sent + sent // 10}), statuses

            expected = {(f"task-{i}", "completed") for i in range(TASKS)}
            expected |= {(f"task-{i}", "in_progress") for i in range(ORDERED)}

            def delivered() -> set[tuple[str, str]]:
                return {(r.json()["task_id"], r.json()["status"]) for r in list(sink.received)}

            assert wait_until(lambda: delivered() >= expected, within=120, every=0.5)
        finally:
            for process in (*workers, *receivers):
                process.stop()

    listed = run_cli("events", "--json", "--limit", "100000", cwd=tmp_path, env=env)
    # Twice in CI the listing came back cut short with exit status 0: with PYTHONUNBUFFERED set,
    # a short write to the pipe lost the rest (commands.stdout_bytes now writes it all).
    assert listed.returncode == 0, (listed.returncode, listed.stderr[-2000:])
    try:
        events = json.loads(listed.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"{len(listed.stdout)} characters, stderr: {listed.stderr!r}") from exc
    keys = [(e["task_id"], e["status"]) for e in events]
    assert len(keys) == len(set(keys)) == len(expected)  # every callback stored once

    received = list(sink.received)
    assert delivered() == expected
    # The kill came mid-run: the worker was killed, not already gone, with most deliveries
    # still to come.
    assert kill["status"] == -signal.SIGKILL, kill
    assert 1500 <= kill["received"] < len(expected) // 2, kill
    duplicates = len(received) - len(expected)
    arrivals: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in received:
        body = r.json()
        arrivals[body["task_id"]][body["status"]].append(r.at)
    for task in (f"task-{i}" for i in range(ORDERED)):
        assert max(arrivals[task]["in_progress"]) < min(arrivals[task]["completed"]), task
    print(
        f"scale-out: {sent} callbacks (+{sent // 10} to both receivers), {len(expected)} events,"
        f" {len(received)} deliveries, {duplicates} duplicate deliveries after a worker SIGKILL,"
        f" at most {sink.most_in_flight} at the sink at once (max_in_flight {MAX_IN_FLIGHT})"
    )
    # A killed worker re-sends at most what it had leased: one destination's max_in_flight.
    assert duplicates <= MAX_IN_FLIGHT
    # The destination's limit held across the three workers, not per worker.
    assert sink.most_in_flight <= MAX_IN_FLIGHT


async def _send(urls: list[str], bodies: list[dict[str, object]], statuses: Counter[int]) -> None:
    """Each body to one receiver in turn; every tenth to both at the same moment."""
    queue = iter(enumerate(bodies))

    async def sender(client: httpx.AsyncClient) -> None:
        for index, body in queue:
            targets = urls if index % 10 == 0 else [urls[index % 2]]
            for response in await asyncio.gather(
                *(client.post(url.strip(), json=body) for url in targets)
            ):
                statuses[response.status_code] += 1

    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        await asyncio.gather(*(sender(client) for _ in range(8)))


def _kill_when(sink: Sink, received: int, worker: Worker, kill: dict[str, int]) -> None:
    """SIGKILL ``worker`` once the sink has ``received`` requests; ``kill`` says how many it
    had then, and how the worker ended."""
    if not wait_until(lambda: len(sink.received) >= received, within=60, every=0.01):
        return
    kill["received"] = len(sink.received)
    worker.signal(signal.SIGKILL)
    kill["status"] = worker.wait()
