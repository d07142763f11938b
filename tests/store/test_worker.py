"""The worker's lanes against a real store: what counts as under way."""

from __future__ import annotations

import asyncio

import pytest

from receiver.background import Background
from receiver.config.settings import Settings
from receiver.config.sources import SourceConfig
from receiver.delivery.worker import Worker
from receiver.destinations import HandlerDestination
from receiver.events import Event
from receiver.routing import Router
from receiver.secrets import Secret
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


@pytest.mark.parametrize(("routed", "reconciled"), [(False, False), (True, False), (False, True)])
async def test_a_worker_listens_for_commits_only_when_it_has_something_to_look_for(
    store: Store, monkeypatch: pytest.MonkeyPatch, routed: bool, reconciled: bool
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
    sources = {
        "fotor": SourceConfig(
            name="fotor",
            kind="fotor",
            require=frozenset({"token"}),
            api_key=Secret("key") if reconciled else None,
            api_base_url="http://127.0.0.1:9",
            reconcile_after=3600,
        )
    }
    settings = Settings(destinations=destinations, sources=sources)
    background = Background(settings, store, Router(()), sweep_interval=0.05)
    await background.start()
    await background.stop()
    assert listened == ([background.wake] if routed or reconciled else [])


async def test_a_delivery_whose_kept_files_cannot_be_linked_fails_its_attempt_and_is_retried(
    store: Store,
) -> None:
    await store.sync_destinations(["app"])
    await store.store(receipt("t1", destinations=("app",)))
    sent: list[Event] = []

    async def unlinkable(event: Event) -> Event:
        raise RuntimeError("no credentials")

    destination = HandlerDestination(name="app", handler=sent.append, max_in_flight=1)
    worker = Worker(store, {"app": destination}, sweep_interval=0.05)
    worker.prepare = unlinkable
    await worker.start()
    try:
        await eventually(lambda: _retrying(store))
    finally:
        await worker.stop()
    assert sent == []
    [delivery] = await store.list_deliveries(DeliveryQuery())
    assert delivery.attempts == 1
    assert delivery.last_error == "cannot make the links of its kept files: RuntimeError"


async def _retrying(store: Store) -> bool:
    return [d.state for d in await store.list_deliveries(DeliveryQuery())] == ["retrying"]
