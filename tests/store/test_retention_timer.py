"""Retention on its timer: ``[server] retention`` prunes at start-up and again every interval,
and a failed run neither stops the timer nor the application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from receiver import Settings, create_app
from receiver.errors import StoreError
from receiver.retention import prune_forever
from receiver.store import EventQuery, Pruned, Store, open_store
from tests.helpers import asgi_client
from tests.integration.servers import eventually

from .factories import aged

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
