"""The reconciler against fake provider APIs on loopback, photohook under uvicorn; and its timing
and failures, a reconciler on a real SQLite store asking a fake Fotor API: the back-off between
checks, a crashed loop, a malformed answer, a task the provider does not know, a rejected key
remembered across a restart, a store that fails to record a check, and a loop that sleeps until
the next task is due. The store's faults are injected around the real store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import receiver.reconciler
from receiver import Settings
from receiver.errors import StoreError
from receiver.observability.metrics import Metrics
from receiver.reconciler import Reconciler, rejected_key
from receiver.routing import Router
from receiver.store import EventQuery, Store, Task, open_store
from tests.helpers import fixture

from .providers import API_KEY, FakeCropPhoto, FakeFotor
from .servers import Sink, eventually, running

Start = Callable[..., Any]


COMPLETED = fixture("fotor/upscale-completed")


TASK = COMPLETED["taskId"]


def fotor_source(api: str, extra: str = "") -> str:
    return (
        f'[sources.fotor]\napi_key = "{API_KEY}"\napi_base_url = "{api}"\n'
        f'reconcile_after = "100ms"\nreconcile_for = "1h"\n{extra}\n'
    )


def routed_to(sink: str) -> str:
    return f'[destinations.app]\nurl = "{sink}/hook"\n[[routes]]\nto = ["app"]\n'


async def tasks(app: Any, state: str | None = None) -> list[Any]:
    return list(await app.store.list_tasks(state))


async def test_a_lost_callback_is_recovered_and_the_late_one_is_a_duplicate(
    photohook: Start, sink_url: Callable[[Sink], str], stack: Any
) -> None:
    fotor = FakeFotor()
    api = stack.enter_context(running(fotor.app, lifespan="off"))
    sink = Sink()
    app = await photohook(fotor_source(api) + routed_to(sink_url(sink)))
    await app.send(fixture("fotor/upscale-in-progress"))  # the completed callback never comes
    await eventually(lambda: len(sink.received) == 1)  # the in_progress event
    fotor.tasks[TASK] = COMPLETED
    await eventually(lambda: len(sink.received) == 2)
    recovered = sink.received[1].json()
    assert (recovered["status"], recovered["via"]) == ("completed", "poll")
    assert recovered["result_urls"] == [COMPLETED["resultUrl"]]
    assert recovered["payload"]["taskId"] == TASK
    [task] = await tasks(app)
    assert task.state == "done"
    async with httpx.AsyncClient() as client:
        late = await client.post(app.hook, json=COMPLETED)
    assert late.json() == {"ok": True, "event_ids": [recovered["id"]], "duplicate": True}
    await eventually(lambda: app.settled(2))
    assert len(sink.received) == 2  # no second delivery


async def test_a_registered_task_is_recovered_without_any_callback(
    photohook: Start, stack: Any
) -> None:
    fotor = FakeFotor()
    api = stack.enter_context(running(fotor.app, lifespan="off"))
    app = await photohook(fotor_source(api) + '[sources.cropphoto]\nkind = "cropphoto"\n')
    async with httpx.AsyncClient(base_url=app.base_url) as client:
        registered = await client.post(
            "/api/tasks", json={"source": "fotor", "task_id": TASK, "business_id": "order-1"}
        )
        assert registered.status_code == 200, registered.text
        assert registered.json()["state"] == "tracked"
        await eventually(lambda: len(fotor.requests) >= 1)  # asked; the task is not done yet
        fotor.tasks[TASK] = COMPLETED
        await eventually(lambda: _has_event(app, TASK))
        unknown = await client.post("/api/tasks", json={"source": "cropphoto", "task_id": "x"})
        assert unknown.status_code == 422  # no api_key: not reconciled
        assert "api_key" in unknown.json()["error"]["message"]
        listed = (await client.get("/api/tasks", params={"state": "done"})).json()["items"]
        assert [t["task_id"] for t in listed] == [TASK]


async def test_provider_errors_back_off_and_never_stop_the_reconciler(
    photohook: Start, stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receiver.reconciler, "REQUEST_TIMEOUT", 0.3)
    fotor = FakeFotor()
    fotor.failures = [500, "999", 429, ("slow", 1.0), 503]
    fotor.tasks[TASK] = COMPLETED
    api = stack.enter_context(running(fotor.app, lifespan="off"))
    app = await photohook(fotor_source(api))
    async with httpx.AsyncClient(base_url=app.base_url) as client:
        await client.post("/api/tasks", json={"source": "fotor", "task_id": TASK})
        await eventually(lambda: _has_event(app, TASK), within=30)
        await eventually(lambda: _checks(app, 6))  # five failures, then the answer
        [task] = await tasks(app)
        assert task.state == "done"
        metrics = (await client.get("/metrics")).text
    assert 'photohook_reconciler_checks_total{outcome="unavailable",source="fotor"} 5.0' in metrics
    assert 'photohook_reconciler_checks_total{outcome="recovered",source="fotor"} 1.0' in metrics


async def test_a_rejected_key_is_reported_and_polling_stops(
    photohook: Start, stack: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fotor, crop = FakeFotor(), FakeCropPhoto()
    fotor.key = "a-different-key"
    api = stack.enter_context(running(fotor.app, lifespan="off"))
    crop_api = stack.enter_context(running(crop.app, lifespan="off"))
    job = fixture("cropphoto/banner-job-completed")
    crop.tasks[job["job_id"]] = job
    app = await photohook(
        fotor_source(api)
        + f'[sources.crop]\nkind = "cropphoto"\nsecrets = ["s"]\napi_key = "{API_KEY}"\n'
        f'api_base_url = "{crop_api}"\nreconcile_after = "100ms"\n'
    )
    async with httpx.AsyncClient(base_url=app.base_url) as client:
        for task_id in ("t1", "t2"):
            await client.post("/api/tasks", json={"source": "fotor", "task_id": task_id})

        async def fotor_report() -> dict[str, Any]:
            report = (await client.get("/api/reconciler")).json()["sources"]
            found: dict[str, Any] = next(r for r in report if r["source"] == "fotor")
            return found

        await eventually(lambda: _rejected(fotor_report))
        fotor_report = await fotor_report()
        assert "401" in fotor_report["last_error"]
        asked = len(fotor.requests)
        # A new task of each source: the crop one's check shows that the reconciler swept
        # after both were registered, and the fotor one, due first, was not asked about.
        await client.post("/api/tasks", json={"source": "fotor", "task_id": "t3"})
        await client.post("/api/tasks", json={"source": "crop", "task_id": job["job_id"]})
        await eventually(lambda: _task_state(app, "done"))
        assert len(fotor.requests) == asked  # polling for fotor stopped
        assert crop.requests == [job["job_id"]]
    rejections = [r for r in caplog.records if "rejected the API key" in r.getMessage()]
    assert len(rejections) == 1
    assert API_KEY not in caplog.text


async def test_a_task_with_no_result_in_time_is_lost(photohook: Start, stack: Any) -> None:
    fotor = FakeFotor()
    fotor.tasks[TASK] = fixture("fotor/upscale-in-progress")
    api = stack.enter_context(running(fotor.app, lifespan="off"))
    app = await photohook(
        f'[sources.fotor]\napi_key = "{API_KEY}"\napi_base_url = "{api}"\n'
        'reconcile_after = "50ms"\nreconcile_for = "400ms"\n'
    )
    await app.send(fixture("fotor/upscale-in-progress"))
    await eventually(lambda: _task_state(app, "lost"))
    [task] = await tasks(app)
    assert task.checks >= 2


async def test_a_progress_callback_after_the_final_one_leaves_the_task_completed(
    photohook: Start, sink_url: Callable[[Sink], str], stack: Any
) -> None:
    fotor = FakeFotor()  # knows no task: a tracked task ends lost
    api = stack.enter_context(running(fotor.app, lifespan="off"))
    sink = Sink()
    app = await photohook(
        f'[sources.fotor]\napi_key = "{API_KEY}"\napi_base_url = "{api}"\n'
        'reconcile_after = "50ms"\nreconcile_for = "400ms"\n' + routed_to(sink_url(sink))
    )
    [completed] = await app.send(COMPLETED)
    [late] = await app.send(fixture("fotor/upscale-in-progress"))  # the queue delayed it
    await app.send(fixture("fotor/upscale-in-progress"), taskId="never-finishes")
    # Once nothing is tracked any more, the reconciler has had its say on every task.
    await eventually(lambda: _task_state(app, "tracked", count=0))
    assert [(t.task_id, t.state) for t in await tasks(app)] == [("never-finishes", "lost")]
    [event] = await app.store.list_events(EventQuery(task_id=TASK, status="completed"))
    assert event.id == completed
    await eventually(lambda: app.settled(3))
    states = {d.event_id: d.state for d in await app.deliveries()}
    assert (states[completed], states[late]) == ("delivered", "skipped")


async def test_confirmed_callbacks_are_delivered_and_contradicted_ones_are_not(
    photohook: Start, sink_url: Callable[[Sink], str], stack: Any
) -> None:
    fotor = FakeFotor()
    fotor.failures = [500]  # unreachable once: confirmation waits and asks again
    api = stack.enter_context(running(fotor.app, lifespan="off"))
    sink = Sink()
    app = await photohook(fotor_source(api, "confirm = true") + routed_to(sink_url(sink)))
    fotor.tasks[TASK] = COMPLETED
    [genuine] = await app.send(COMPLETED)
    await eventually(lambda: sink.ids == [genuine])
    forged_body = COMPLETED | {"taskId": "forged-task", "resultUrl": "https://evil.example/x.png"}
    fotor.tasks["forged-task"] = COMPLETED | {"taskId": "forged-task"}
    [forged] = await app.send(forged_body)
    [unknown] = await app.send(COMPLETED | {"taskId": "nobody-knows"})
    await eventually(lambda: _task_state(app, "unconfirmed", count=2))
    states = {d.event_id: (d.state, d.last_error) for d in await app.deliveries()}
    assert states[genuine][0] == "delivered"
    assert states[forged] == (
        "unconfirmed",
        "the provider's result URLs differ from the callback's",
    )
    assert states[unknown] == ("unconfirmed", "the provider does not know this task")
    assert sink.ids == [genuine]
    async with httpx.AsyncClient(base_url=app.base_url) as client:
        metrics = (await client.get("/metrics")).text
    assert 'photohook_reconciler_checks_total{outcome="unconfirmed",source="fotor"} 2.0' in metrics
    assert 'photohook_reconciler_checks_total{outcome="confirmed",source="fotor"} 1.0' in metrics


async def test_cropphoto_jobs_are_recovered(
    photohook: Start, sink_url: Callable[[Sink], str], stack: Any
) -> None:
    crop = FakeCropPhoto()
    api = stack.enter_context(running(crop.app, lifespan="off"))
    sink = Sink()
    app = await photohook(
        f'[sources.crop]\nkind = "cropphoto"\nsecrets = ["s"]\napi_key = "{API_KEY}"\n'
        f'api_base_url = "{api}"\nreconcile_after = "100ms"\n' + routed_to(sink_url(sink))
    )
    job = fixture("cropphoto/banner-job-completed")
    async with httpx.AsyncClient() as client:
        processing = job | {"status": "processing", "results": []}
        response = await client.post(
            f"{app.base_url}/hooks/crop", json=processing, headers={"x-webhook-secret": "s"}
        )
        assert response.status_code == 200
    crop.tasks[job["job_id"]] = job
    await eventually(lambda: len(sink.received) == 2)
    recovered = sink.received[1].json()
    assert (recovered["status"], recovered["via"], recovered["labels"]) == (
        "completed",
        "poll",
        job["job_labels"],
    )
    assert recovered["result_urls"] == [job["results"][0]["output_image_url"]]


async def _rejected(report: Callable[[], Any]) -> bool:
    return bool((await report())["key_rejected"])


async def _has_event(app: Any, task_id: str) -> bool:
    events = await app.store.list_events(EventQuery(task_id=task_id, status="completed"))
    return bool(events) and events[0].via == "poll"


async def _checks(app: Any, count: int) -> bool:
    return [t.checks for t in await app.store.list_tasks()] == [count]


async def _task_state(app: Any, state: str, count: int = 1) -> bool:
    return len(await app.store.list_tasks(state)) == count


AFTER = 0.1


class Faulty:
    """A real store that records each check as it is finished, and whose ``claim_tasks`` or
    ``finish_task`` fails the next times it is asked to fail."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        self.failing_claims: list[Exception] = []
        self.failing_finishes = 0
        self.failed_at: list[float] = []
        self.claimed_sources: list[list[str]] = []
        self.checks: list[tuple[float, float | None, str | None]] = []  # when, next, error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def claim_tasks(self, sources: Any, *args: Any) -> Any:
        self.claimed_sources.append(list(sources))
        if self.failing_claims:
            raise self.failing_claims.pop(0)
        return await self.inner.claim_tasks(sources, *args)

    async def finish_task(self, task: Task, worker_id: str, **changes: Any) -> None:
        if self.failing_finishes:
            self.failing_finishes -= 1
            self.failed_at.append(time.time())
            raise StoreError("recording the check: the database is gone (injected)")
        at = time.time()  # when the check's next time was reckoned, give or take a step
        await self.inner.finish_task(task, worker_id, **changes)
        self.checks.append((at, changes.get("next_check_at"), changes.get("error")))


@pytest.fixture
def fotor() -> Iterator[tuple[FakeFotor, str]]:
    fake = FakeFotor()
    with running(fake.app, lifespan="off") as url:
        yield fake, url


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Faulty]:
    opened = open_store(f"sqlite:///{tmp_path / 'photohook.db'}")
    await opened.open()
    yield Faulty(opened)
    await opened.close()


class Reconcilers:
    """Starts reconcilers of the fotor source (with its API key, or another), stops them all."""

    def __init__(self, store: Faulty, api: str, tmp_path: Path) -> None:
        self.store, self.api, self.tmp_path = store, api, tmp_path
        self.running: list[Reconciler] = []

    def settings(self, api_key: str = API_KEY) -> Settings:
        path = self.tmp_path / "photohook.toml"
        path.write_text(
            f'[sources.fotor]\napi_key = "{api_key}"\napi_base_url = "{self.api}"\n'
            f'reconcile_after = "{AFTER * 1000:g}ms"\nreconcile_for = "1h"\n'
        )
        return Settings.load(config_file=path, environ={"PHOTOHOOK_SECRET_KEYS": "k"})

    async def start(
        self,
        api_key: str = API_KEY,
        *,
        sweep_interval: float = 0.05,
        metrics: Metrics | None = None,
    ) -> Reconciler:
        settings = self.settings(api_key)
        reconciler = Reconciler(
            self.store,  # type: ignore[arg-type]
            settings.sources,
            Router(settings.routes),
            worker_id=f"w{len(self.running)}",
            metrics=metrics,
            sweep_interval=sweep_interval,
        )
        await reconciler.start()
        self.running.append(reconciler)
        return reconciler

    async def stop(self, reconciler: Reconciler) -> None:
        self.running.remove(reconciler)
        await reconciler.stop()

    async def track(self, task_id: str = TASK) -> None:
        source = self.settings().sources["fotor"]
        found = source.tracking
        assert found is not None
        await self.store.track_task("fotor", task_id, None, found, time.time())


@pytest.fixture
async def reconcilers(
    store: Faulty, fotor: tuple[FakeFotor, str], tmp_path: Path
) -> AsyncIterator[Reconcilers]:
    started = Reconcilers(store, fotor[1], tmp_path)
    yield started
    for reconciler in list(started.running):
        await started.stop(reconciler)


async def task_state(store: Faulty, state: str) -> bool:
    return [t.state for t in await store.list_tasks()] == [state]


async def test_checks_back_off_doubling_up_to_the_longest_interval(
    reconcilers: Reconcilers,
    store: Faulty,
    fotor: tuple[FakeFotor, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(receiver.reconciler, "MAX_INTERVAL", 4 * AFTER)
    fake, _ = fotor
    fake.failures = [500] * 5
    await reconcilers.start()
    await reconcilers.track()
    await eventually(lambda: len(store.checks) == 5)
    fake.tasks[TASK] = COMPLETED
    await eventually(lambda: task_state(store, "done"))
    delays = [next_at - at for at, next_at, _ in store.checks[:5] if next_at is not None]
    expected = [AFTER, 2 * AFTER, 4 * AFTER, 4 * AFTER, 4 * AFTER]
    assert len(delays) == 5
    assert all(abs(d - e) < 0.05 for d, e in zip(delays, expected, strict=True)), delays
    # ...and each check came when the one before it said, not sooner.
    for (_, due, _), (at, _, _) in zip(store.checks, store.checks[1:], strict=False):
        assert due is not None
        assert at >= due


async def test_a_failure_of_the_loop_is_logged_and_checking_goes_on(
    reconcilers: Reconcilers,
    store: Faulty,
    fotor: tuple[FakeFotor, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fotor[0].tasks[TASK] = COMPLETED
    store.failing_claims = [RuntimeError("a bug in claiming (injected)")] * 2
    await reconcilers.start()
    await reconcilers.track()
    await eventually(lambda: task_state(store, "done"))
    failures = [r for r in caplog.records if "the reconciler failed" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info is not None and "injected" in str(r.exc_info[1]) for r in failures)


async def test_a_malformed_answer_is_recorded_and_asked_again_later(
    reconcilers: Reconcilers, store: Faulty, fotor: tuple[FakeFotor, str]
) -> None:
    fake, _ = fotor
    fake.tasks[TASK] = COMPLETED | {"status": 42}
    await reconcilers.start()
    await reconcilers.track()
    await eventually(lambda: len(store.checks) >= 1)
    at, next_at, error = store.checks[0]
    assert error is not None
    assert error.startswith("the provider's answer does not parse: ")
    assert "status" in error
    assert next_at is not None
    assert next_at - at == pytest.approx(AFTER, abs=0.05)
    [task] = await store.list_tasks()
    assert (task.state, task.last_error) == ("tracked", error)
    fake.tasks[TASK] = COMPLETED
    await eventually(lambda: task_state(store, "done"))


async def test_a_rejected_key_stays_rejected_across_a_restart_until_it_changes(
    reconcilers: Reconcilers, store: Faulty, fotor: tuple[FakeFotor, str]
) -> None:
    fake, _ = fotor
    fake.key = "the-key-fotor-knows"
    first = await reconcilers.start()
    await reconcilers.track()
    await eventually(lambda: store.get_meta(rejected_key("fotor")))
    await reconcilers.stop(first)
    asked = len(fake.requests)
    assert asked == 1
    # Restarted with the same key: it does not ask again, sweep after sweep.
    store.claimed_sources.clear()
    await reconcilers.start()
    await eventually(lambda: len(store.claimed_sources) >= 5)
    assert all(sources == [] for sources in store.claimed_sources)
    assert len(fake.requests) == asked
    [task] = await store.list_tasks()
    assert task.state == "tracked"
    # A new key is a new chance.
    await reconcilers.stop(reconcilers.running[0])
    fake.tasks[TASK] = COMPLETED
    await reconcilers.start(api_key="the-key-fotor-knows")
    await eventually(lambda: task_state(store, "done"))


async def test_a_check_the_store_fails_to_record_is_made_again_when_its_lease_runs_out(
    reconcilers: Reconcilers,
    store: Faulty,
    fotor: tuple[FakeFotor, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lease = 0.5
    monkeypatch.setattr(receiver.reconciler, "LEASE", lease)
    fake, _ = fotor
    fake.tasks[TASK] = fixture("fotor/upscale-in-progress")
    store.failing_finishes = 1
    await reconcilers.start()
    await reconcilers.track()
    await eventually(lambda: store.failed_at != [])
    fake.tasks[TASK] = COMPLETED
    await eventually(lambda: task_state(store, "done"))
    await eventually(lambda: len(store.checks) == 1)  # the result's event may come first
    [failed] = [r for r in caplog.records if "cannot record the check" in r.getMessage()]
    assert TASK in failed.getMessage()
    assert "injected" in failed.getMessage()
    # Asked again once the lease ran out, not before; and the check was recorded then.
    assert len(fake.requests) == 2
    [(checked_at, _, _)] = store.checks
    assert checked_at - store.failed_at[0] >= lease * 0.9


async def test_the_loop_sleeps_until_the_next_task_is_due(
    reconcilers: Reconcilers, store: Faulty, fotor: tuple[FakeFotor, str]
) -> None:
    """Neither polling the store in a busy loop while a task waits, nor waiting for the next
    sweep when a task falls due before it."""
    fotor[0].tasks[TASK] = COMPLETED
    await reconcilers.track()  # due AFTER from now
    tracked_at = time.time()
    await reconcilers.start(sweep_interval=30.0)
    await eventually(lambda: task_state(store, "done"), within=10)
    assert time.time() - tracked_at < 10
    # Once at the start (nothing due yet), once when due, once after the check; one more for
    # a wake-up a hair early.
    assert len(store.claimed_sources) <= 4, len(store.claimed_sources)
    async with store.inner._read() as tx:  # type: ignore[attr-defined]
        [(receipt_id, via)] = await tx.fetch("SELECT id, via FROM receipts")
    assert receipt_id.startswith("rcv_") and via == "poll"


async def test_a_task_the_provider_does_not_know_is_counted_and_asked_again_later(
    reconcilers: Reconcilers, store: Faulty, fotor: tuple[FakeFotor, str]
) -> None:
    metrics = Metrics(["fotor"], [])
    await reconcilers.start(metrics=metrics)
    await reconcilers.track()  # the fake API answers with no data for it
    await eventually(lambda: len(store.checks) >= 1)
    at, next_at, error = store.checks[0]
    assert error == "the provider does not know this task (yet)"
    assert next_at is not None
    assert next_at - at == pytest.approx(AFTER, abs=0.05)
    sample = metrics.registry.get_sample_value(
        "photohook_reconciler_checks_total", {"source": "fotor", "outcome": "unknown"}
    )
    assert sample is not None and sample >= 1
    [task] = await store.list_tasks()
    assert task.state == "tracked"
