"""The reconciler against fake provider APIs on loopback, photohook under uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import receiver.reconciler
from receiver.store import EventQuery
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
