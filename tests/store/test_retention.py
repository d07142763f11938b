"""Retention: what ``prune`` deletes and keeps, on both engines; and its timer: ``[server]
retention`` prunes at start-up and again every interval, and a failed run neither stops the
timer nor the application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from receiver import Settings, create_app
from receiver.errors import StoreError
from receiver.retention import prune_forever
from receiver.store import Attempt, DeliveryQuery, EventQuery, Outcome, Pruned, Store, open_store
from tests.helpers import asgi_client
from tests.integration.servers import eventually

from .factories import aged, receipt


async def test_prune_keeps_what_is_still_being_delivered(store: Store) -> None:
    await store.sync_destinations(["app"])
    finished = await store.store(receipt("done", destinations=("app",)))
    waiting = await store.store(receipt("waiting", destinations=("app",)))
    await store.store(receipt("unrouted"))
    claims, _ = await store.claim({"app": 10}, "w", 60, time.time())
    done = next(c for c in claims if c.event.id == finished.event_ids[0])
    attempt = Attempt(started_at=time.time(), duration_ms=1.0, ok=True, status_code=200)
    await store.finish(Outcome(done.delivery.id, "w", attempt, "delivered"))
    later = datetime.now(UTC) + timedelta(seconds=5)

    assert await store.prune(later - timedelta(days=1), dry_run=True) == Pruned()
    counted = await store.prune(later, dry_run=True)
    assert counted == Pruned(events=2, receipts=2, deliveries=1, attempts=1)
    assert len(await store.list_events(EventQuery())) == 3  # a dry run deletes nothing

    assert await store.prune(later, batch=1) == counted
    [kept] = await store.list_events(EventQuery())
    assert kept.id == waiting.event_ids[0]
    [delivery] = await store.list_deliveries(DeliveryQuery())
    assert delivery.event_id == kept.id
    detail = await store.event_detail(kept.id)
    assert detail is not None and len(detail.receipts) == 1  # its request is kept with it
    assert await store.prune(later) == Pruned()


async def test_prune_keeps_events_waiting_for_confirmation(store: Store) -> None:
    from receiver.store import Tracking

    await store.sync_destinations(["app"])
    await store.store(
        receipt(
            "confirming",
            destinations=("app",),
            terminal=True,
            tracking=Tracking(600, 3600, confirm=True),
        )
    )
    [delivery] = await store.list_deliveries(DeliveryQuery())
    assert delivery.state == "confirming"
    assert await store.prune(datetime.now(UTC) + timedelta(seconds=5)) == Pruned()


async def test_prune_deletes_tasks_that_finished_before_the_cutoff(store: Store) -> None:
    from receiver.store import Tracking

    tracking = Tracking(600, 3600)
    two_days_ago = time.time() - 2 * 86400
    for task_id in ("finished-long-ago", "finished-lately"):
        await store.store(receipt(task_id, "completed"))
    finished = await store.track_task("fotor", "finished-long-ago", None, tracking, two_days_ago)
    waiting = await store.track_task("fotor", "still-waiting", None, tracking, two_days_ago)
    lately = await store.track_task("fotor", "finished-lately", None, tracking, time.time())
    assert (finished.state, waiting.state, lately.state) == ("done", "tracked", "done")
    cutoff = datetime.now(UTC) - timedelta(days=1)

    assert await store.prune(cutoff, dry_run=True) == Pruned(tasks=1)
    assert await store.prune(cutoff) == Pruned(tasks=1)
    assert {t.task_id for t in await store.list_tasks()} == {"still-waiting", "finished-lately"}


async def test_a_run_in_small_batches_deletes_all_it_counted(store: Store) -> None:
    """Batches start where the last one stopped, past what is kept, and still find every
    request orphaned along the way (a resent callback's differing request among them)."""
    await store.sync_destinations(["app"])
    await store.store(receipt("kept", destinations=("app",)))
    await store.store(receipt("first"))
    await store.store(receipt("first", body=b'{"taskId": "first", "resent": true}'))
    await store.store(receipt("kept-too", destinations=("app",)))
    await store.store(receipt("second"))
    later = datetime.now(UTC) + timedelta(seconds=5)

    counted = await store.prune(later, dry_run=True)
    assert counted == Pruned(events=2, receipts=3)
    assert await store.prune(later, batch=1) == counted
    assert await store.prune(later, dry_run=True) == Pruned()
    assert sorted(e.task_id for e in await store.list_events(EventQuery())) == ["kept", "kept-too"]


WEEK = 7 * 86400.0


async def task_ids(store: Store) -> list[str]:
    return sorted(e.task_id for e in await store.list_events(EventQuery()))


class Failing:
    """A real store whose next ``prune`` fails, as when the database is gone for a moment."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        self.failures = 1
        self.runs = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def prune(self, *args: Any, **kwargs: Any) -> Pruned:
        self.runs += 1
        if self.failures:
            self.failures -= 1
            raise StoreError("pruning: the database is gone (injected)")
        pruned: Pruned = await self.inner.prune(*args, **kwargs)
        return pruned


@contextlib.asynccontextmanager
async def pruning(store: Any, interval: float) -> AsyncIterator[None]:
    timer = asyncio.create_task(prune_forever(store, WEEK, interval=interval))
    try:
        yield
    finally:
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer


async def test_the_timer_prunes_again_every_interval_and_outlives_a_failed_run(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "photohook.retention")
    failing = Failing(store)
    await store.store(aged("old", 8))
    await store.store(aged("recent", 6))
    async with pruning(failing, interval=0.05):
        await eventually(lambda: _is(task_ids(store), ["recent"]))
        assert "pruning failed: pruning: the database is gone (injected)" in caplog.text
        await store.store(aged("old-too", 30))  # arrives (imported, say) between runs
        await eventually(lambda: len(runs(caplog)) == 2)
        assert await task_ids(store) == ["recent"]
    assert failing.runs >= 3  # the failed run, the one that pruned, the one after
    assert (
        runs(caplog)
        == ["pruned 1 events, 1 requests, 0 deliveries, 0 attempts, 0 tasks, 0 rejected requests"]
        * 2
    )


def runs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What each pruning run that deleted something logged."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("pruned ")]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "photohook.toml"
    path.write_text('[server]\nretention = "7d"\n')
    return path


async def test_the_application_prunes_on_its_timer_when_retention_is_set(
    config: Path, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'photohook.db'}"
    seeded = open_store(database)
    await seeded.open()
    try:
        await seeded.store(aged("old", 8))
        await seeded.store(aged("recent", 1))
    finally:
        await seeded.close()
    settings = Settings.load(
        config_file=config, database_url=database, environ={"PHOTOHOOK_SECRET_KEYS": "k"}
    )
    app = create_app(settings)
    async with asgi_client(app):
        await eventually(lambda: _is(task_ids(app.state.store), ["recent"]))


async def _is(found: Any, expected: list[str]) -> bool:
    return bool(await found == expected)
