"""Batches across processes on PostgreSQL: two receivers and two workers, separate processes on
one database, take the callbacks of 20 batches of 50 tasks (in progress, then final, some sent to
both receivers at the same moment, out of order); the sink receives exactly one batch.completed
per batch, and one batch.expired for a batch declared afterwards whose other task never comes."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.process import Serve, Worker, run_cli
from tests.integration.servers import Sink, running

from .helpers import fotor_body, wait_until

BATCHES = 20
TASKS = 50


def config(sink_url: str) -> str:
    return (
        "[server]\nallow_private_destinations = true\n"
        f'[sources.fotor]\nbatch_key = "^(order-\\\\d+)-"\nbatch_expected = {TASKS}\n'
        f'[destinations.sink]\nurl = "{sink_url}/hook"\ntimeout = "2s"\n'
        'retry_schedule = ["100ms", "200ms", "500ms", "1s", "2s"]\n'
        '[[routes]]\ntype = ["batch.*"]\nto = ["sink"]\n'
    )


def callbacks() -> list[dict[str, Any]]:
    """Every task in progress, then final (one in ten failed), in a shuffled order within each
    wave; a fifth of the final ones resent."""
    progress, final = [], []
    for order in range(BATCHES):
        for n in range(TASKS):
            body = fotor_body(n, prefix=f"o{order}-task") | {"businessId": f"order-{order}-{n}"}
            progress.append(body | {"status": 0})
            final.append(body | {"status": 2 if n % 10 == 0 else 1})
    random.shuffle(progress)
    final += random.sample(final, len(final) // 5)
    random.shuffle(final)
    return progress + final


async def send(urls: list[str], bodies: list[dict[str, Any]], statuses: Counter[int]) -> None:
    """Each body to one receiver in turn; every tenth to both at the same moment."""
    queue = iter(enumerate(bodies))

    async def sender(client: httpx.AsyncClient) -> None:
        for index, body in queue:
            targets = urls if index % 10 == 0 else [urls[index % 2]]
            for response in await asyncio.gather(*(client.post(url, json=body) for url in targets)):
                statuses[response.status_code] += 1

    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        await asyncio.gather(*(sender(client) for _ in range(16)))


@pytest.mark.timeout(300)
def test_each_batch_gets_one_event_from_many_processes(tmp_path: Path, postgres_url: str) -> None:
    env = {"PHOTOHOOK_DATABASE_URL": postgres_url}
    sink = Sink()
    with running(sink.app, lifespan="off") as sink_url:
        (tmp_path / "photohook.toml").write_text(config(sink_url))
        assert run_cli("migrate", cwd=tmp_path, env=env).returncode == 0
        receivers = [Serve(tmp_path, "--no-worker", "--no-migrate", env=env) for _ in range(2)]
        workers = [Worker(tmp_path, "--no-migrate", env=env) for _ in range(2)]
        try:
            for process in (*receivers, *workers):
                process.start()
            urls = [
                run_cli("url", "fotor", "--base-url", r.base_url, cwd=tmp_path, env=env).stdout
                for r in receivers
            ]
            bodies = callbacks()
            statuses: Counter[int] = Counter()
            started = time.perf_counter()
            asyncio.run(send([u.strip() for u in urls], bodies, statuses))
            sent = time.perf_counter() - started
            assert statuses == Counter({200: len(bodies) + (len(bodies) + 9) // 10}), statuses
            declared = run_cli(
                "batch", "create", "late", "--task", "fotor:o0-task-0", "--task",
                "fotor:never-comes", "--deadline", "1s", cwd=tmp_path, env=env,
            )  # fmt: skip
            assert declared.returncode == 0, declared.stderr

            def batch_events() -> Counter[tuple[str, str]]:
                return Counter((r.json()["task_id"], r.json()["type"]) for r in list(sink.received))

            expected = {(f"order-{n}", "batch.completed") for n in range(BATCHES)}
            expected.add(("late", "batch.expired"))
            assert wait_until(lambda: set(batch_events()) == expected, within=60)
            elapsed = time.perf_counter() - started
            time.sleep(6)  # past every process's next sweep: nothing more comes
            assert batch_events() == Counter(dict.fromkeys(expected, 1))
            for received in sink.received:
                body = received.json()
                if body["type"] == "batch.completed":
                    assert body["payload"]["counts"] == {"completed": 45, "failed": 5, "total": 50}
                else:
                    assert body["payload"]["outstanding"] == [
                        {"source": "fotor", "task_id": "never-comes"}
                    ]
            print(
                f"\n{BATCHES} batches of {TASKS} tasks, {sum(statuses.values())} callbacks into "
                f"2 receivers, 2 workers: sent in {sent:.1f}s, every batch event delivered "
                f"{elapsed:.1f}s after the first callback (the expiry: a deadline of 1s, swept "
                "every 5s)"
            )
        finally:
            for process in (*receivers, *workers):
                process.stop()
