"""Batches end to end, on SQLite and on PostgreSQL: photohook under uvicorn on loopback takes a
batch's callbacks concurrently, out of order and resent, and a real HTTP sink receives exactly one
batch.completed (or, past the deadline with a task missing, one batch.expired); on PostgreSQL two
photohook processes' worth of apps, each with its own pool and worker, still send one."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver import Settings, create_app
from receiver.tokens import URLTokens
from tests.helpers import fixture

from .conftest import KEY, SECRET
from .providers import API_KEY, FakeFotor
from .servers import Sink, eventually, running

Start = Callable[..., Any]
COMPLETED = fixture("fotor/upscale-completed")
FAILED = fixture("fotor/bg-remove-failed")
IN_PROGRESS = fixture("fotor/upscale-in-progress")


@pytest.fixture
def photohook_database(database_url: str) -> str:
    return database_url


def config(sink: str, source: str = "") -> str:
    return (
        '[sources.fotor]\nbatch_key = "^(order-\\\\d+)-"\n'
        f"{source}\n"
        f'[destinations.app]\nurl = "{sink}/hook"\nsecret = "{SECRET}"\n'
        '[[routes]]\nname = "batches"\ntype = ["batch.*"]\nto = ["app"]\n'
    )


def callback(n: int, order: str = "order-1", status: int = 1) -> dict[str, Any]:
    body = COMPLETED if status == 1 else FAILED
    return body | {
        "taskId": f"task-{order}-{n}",
        "businessId": f"{order}-{n}",
        "status": status,
        "resultUrl": f"https://cdn.example.com/{order}/{n}.png" if status == 1 else None,
    }


async def post_all(hooks: list[str], bodies: list[dict[str, Any]]) -> None:
    """Post every body, all at once, spread over ``hooks``; each must be stored."""
    async with httpx.AsyncClient(timeout=30) as client:
        answers = await asyncio.gather(
            *(client.post(hooks[n % len(hooks)], json=b) for n, b in enumerate(bodies))
        )
    assert [a.status_code for a in answers] == [200] * len(bodies)


def batch_events(sink: Sink) -> list[dict[str, Any]]:
    return [r.json() for r in sink.received if r.json()["type"].startswith("batch.")]


def fifty_with_resends() -> list[dict[str, Any]]:
    """50 tasks (every tenth failed), each also sent once in progress, 20 final ones resent; all
    in a random order."""
    finals = [callback(n, status=2 if n % 10 == 0 else 1) for n in range(50)]
    progress = [callback(n) | {"status": 0, "resultUrl": None} for n in range(50)]
    bodies = finals + progress + random.sample(finals, 20)
    random.shuffle(bodies)
    return bodies


async def test_fifty_tasks_finished_concurrently_make_one_batch_completed(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink(secret=SECRET)
    app = await photohook(config(sink_url(sink), "batch_expected = 50"))
    started = time.perf_counter()
    await post_all([app.hook], fifty_with_resends())
    await eventually(lambda: len(batch_events(sink)) == 1)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.5)  # nothing more comes
    [event] = batch_events(sink)
    assert sink.received[0].verified is True
    assert (event["type"], event["task_id"], event["source"]) == (
        "batch.completed",
        "order-1",
        "batches",
    )
    assert event["payload"]["counts"] == {"completed": 45, "failed": 5, "total": 50}
    tasks = {t["task_id"]: t for t in event["payload"]["tasks"]}
    assert tasks["task-order-1-7"]["result_urls"] == ["https://cdn.example.com/order-1/7.png"]
    assert tasks["task-order-1-10"]["status"] == "failed"
    print(f"\n50 tasks, 120 callbacks, one receiver: batch.completed delivered in {elapsed:.2f}s")


async def test_a_batch_missing_a_task_expires_once_at_its_deadline(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink(secret=SECRET)
    app = await photohook(config(sink_url(sink), 'batch_expected = 3\nbatch_deadline = "1s"'))
    await post_all([app.hook], [callback(0), callback(1, status=2)])
    await eventually(lambda: len(batch_events(sink)) == 1, within=15)
    [event] = batch_events(sink)
    assert event["type"] == "batch.expired"
    assert event["payload"]["missing"] == 1
    assert event["payload"]["counts"] == {"completed": 1, "failed": 1, "total": 2}
    await post_all([app.hook], [callback(2)])  # too late: the batch is over
    await asyncio.sleep(0.5)
    assert len(batch_events(sink)) == 1


async def test_a_declared_batch_names_its_outstanding_task_when_it_expires(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink(secret=SECRET)
    app = await photohook(config(sink_url(sink)))
    await post_all([app.hook], [callback(0, "x"), callback(1, "x")])
    tasks = [{"source": "fotor", "task_id": f"task-x-{n}"} for n in range(3)]
    async with httpx.AsyncClient(base_url=app.base_url) as client:
        answer = await client.post(
            "/api/batches", json={"id": "shoot-9", "tasks": tasks, "deadline": "1s"}
        )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["completed"], answer.json()["size"]) == (2, 3)
    await eventually(lambda: len(batch_events(sink)) == 1, within=15)
    [event] = batch_events(sink)
    assert (event["type"], event["task_id"]) == ("batch.expired", "shoot-9")
    assert event["payload"]["outstanding"] == [{"source": "fotor", "task_id": "task-x-2"}]


async def test_reconciliation_finishing_the_last_task_completes_the_batch(
    photohook: Start, sink_url: Callable[[Sink], str], stack: ExitStack
) -> None:
    fotor = FakeFotor()
    api = stack.enter_context(running(fotor.app, lifespan="off"))
    sink = Sink(secret=SECRET)
    source = (
        f'batch_expected = 2\napi_key = "{API_KEY}"\napi_base_url = "{api}"\n'
        'reconcile_after = "100ms"\nreconcile_for = "1h"\n'
    )
    app = await photohook(config(sink_url(sink), source))
    lost = callback(1, "order-4")
    await post_all([app.hook], [callback(0, "order-4"), lost | {"status": 0}])
    await asyncio.sleep(0.3)
    assert batch_events(sink) == []
    fotor.tasks[lost["taskId"]] = lost  # its completed callback never comes
    await eventually(lambda: len(batch_events(sink)) == 1)
    [event] = batch_events(sink)
    assert event["payload"]["counts"] == {"completed": 2, "failed": 0, "total": 2}
    recovered = {t["task_id"]: t for t in event["payload"]["tasks"]}[lost["taskId"]]
    detail = await app.store.event_detail(recovered["event_id"])
    assert detail is not None and detail.event.via == "poll"


async def test_two_receivers_with_their_own_workers_send_one_batch_completed(
    postgres_url: str, tmp_path: Path, sink_url: Callable[[Sink], str], stack: ExitStack
) -> None:
    """On PostgreSQL: two apps, each with its own pool and delivery worker (as two processes),
    take the callbacks of one batch between them."""
    sink = Sink(secret=SECRET)
    path = tmp_path / "photohook.toml"
    path.write_text(
        "[server]\nallow_private_destinations = true\n"
        + config(sink_url(sink), "batch_expected = 50")
    )
    settings = Settings.load(
        config_file=path, database_url=postgres_url, environ={"PHOTOHOOK_SECRET_KEYS": KEY}
    )
    token = URLTokens([KEY]).token("fotor")
    hooks = [
        stack.enter_context(running(create_app(settings))) + f"/hooks/fotor/{token}"
        for _ in range(2)
    ]
    started = time.perf_counter()
    await post_all(hooks, fifty_with_resends())
    await eventually(lambda: len(batch_events(sink)) == 1)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(1.0)  # both workers have swept by now
    [event] = batch_events(sink)
    assert event["payload"]["counts"] == {"completed": 45, "failed": 5, "total": 50}
    print(f"\n50 tasks, 120 callbacks, two receivers: batch.completed delivered in {elapsed:.2f}s")
