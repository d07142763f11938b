"""The worker's edges against a real SQLite store: the rate limit, retries by the schedule, and
what a held (410) or dead delivery records."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from receiver.destinations import HandlerDestination
from receiver.events import Event
from receiver.store import DeliveryQuery, Store, open_store
from receiver.worker import Worker
from tests.integration.servers import eventually
from tests.store.factories import receipt


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'worker.db'}")
    await opened.open()
    yield opened
    await opened.close()


async def states(store: Store) -> list[str]:
    return sorted(d.state for d in await store.list_deliveries(DeliveryQuery()))


async def test_the_rate_limit_spaces_attempts_across_the_lanes_places(store: Store) -> None:
    await store.sync_destinations(["app"])
    for index in range(6):
        await store.store(receipt(f"t{index}", destinations=("app",)))
    called: list[float] = []

    async def handler(event: Event) -> None:
        called.append(time.monotonic())

    # Four places in flight, but at most ten attempts a second between them.
    destination = HandlerDestination(name="app", handler=handler, max_in_flight=4, rate_limit=10)
    worker = Worker(store, {"app": destination}, sweep_interval=0.05)
    await worker.start()
    try:
        await eventually(lambda: len(called) == 6)
        await eventually(lambda: _states_are(store, ["delivered"] * 6))
    finally:
        await worker.stop()
    gaps = [later - earlier for earlier, later in itertools.pairwise(called)]
    assert min(gaps) >= 0.095, gaps
    assert statistics.median(gaps) < 0.16, gaps  # the configured rate, not a slower one


async def _states_are(store: Store, expected: list[str]) -> bool:
    return await states(store) == expected
