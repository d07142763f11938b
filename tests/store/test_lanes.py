"""The worker's lanes against a real store: what counts as under way."""

from __future__ import annotations

import asyncio

import pytest

from receiver.destinations import HandlerDestination
from receiver.events import Event
from receiver.store import DeliveryQuery, Outcome, Store
from receiver.worker import Worker
from tests.integration.servers import eventually

from .factories import receipt


async def test_an_answered_delivery_frees_its_place_before_its_outcome_is_committed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.sync_destinations(["app"])
    for index in range(3):
        await store.store(receipt(f"t{index}", destinations=("app",)))
    sent: list[str] = []

    async def handler(event: Event) -> None:
        sent.append(event.task_id)

    committing = asyncio.Event()
    finish = store.finish

    async def held(outcome: Outcome) -> None:
        await committing.wait()
        await finish(outcome)

    monkeypatch.setattr(store, "finish", held)
    destination = HandlerDestination(name="app", handler=handler, max_in_flight=1)
    worker = Worker(store, {"app": destination}, sweep_interval=0.05)
    await worker.start()
    try:
        # One at a time, and none of the three outcomes committed yet.
        await eventually(lambda: sorted(sent) == ["t0", "t1", "t2"])
        committing.set()
        await eventually(lambda: _all_delivered(store, 3))
    finally:
        await worker.stop()
    assert len(sent) == 3


async def _all_delivered(store: Store, count: int) -> bool:
    states = [delivery.state for delivery in await store.list_deliveries(DeliveryQuery())]
    return states == ["delivered"] * count
