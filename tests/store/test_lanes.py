"""The worker's lanes against a real store: what counts as under way."""

from __future__ import annotations

import asyncio

import pytest

from receiver.delivery.destinations import HandlerDestination
from receiver.delivery.worker import Worker
from receiver.events import Event
from receiver.store import DeliveryQuery, Outcome, Store
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


@pytest.mark.parametrize("routed", [False, True])
async def test_a_worker_listens_for_commits_only_when_it_has_somewhere_to_deliver(
    store: Store, monkeypatch: pytest.MonkeyPatch, routed: bool
) -> None:
    # Listening costs the receiver work on every commit (SQLite: a stat and a query every 10 ms),
    # for nothing when no delivery can ever be due.
    listened: list[object] = []

    async def listen(wake: object) -> None:
        listened.append(wake)

    monkeypatch.setattr(store, "listen", listen)

    async def handler(event: Event) -> None:
        pass

    destinations = {"app": HandlerDestination(name="app", handler=handler)} if routed else {}
    worker = Worker(store, destinations, sweep_interval=0.05)
    await worker.start()
    await worker.stop()
    assert listened == ([worker.wake] if routed else [])
