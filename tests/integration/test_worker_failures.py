"""The delivery worker when things go wrong: its store fails, its loop crashes, it is stopped with
deliveries in flight; and its rate limit. A real SQLite store and real sinks on loopback; the
store's faults are injected around the real store."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import receiver.delivery.worker
from receiver.delivery.worker import Worker
from receiver.destinations import HTTPDestination
from receiver.errors import StoreError
from receiver.store import DeliveryQuery, Outcome, Store, open_store
from tests.store.factories import receipt

from .servers import Reply, Sink, eventually

SWEEP = 0.1


class Faulty:
    """A real store whose ``claim`` or ``finish`` fails the next times it is asked to fail, as
    when its database goes away; ``claimed_at`` records when each claim was asked for."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        self.failing_claims: list[Exception] = []
        self.failing_finishes = 0
        self.claimed_at: list[float] = []
        self.finished: list[Outcome] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def claim(self, *args: Any, **kwargs: Any) -> Any:
        self.claimed_at.append(time.monotonic())
        if self.failing_claims:
            raise self.failing_claims.pop(0)
        return await self.inner.claim(*args, **kwargs)

    async def finish(self, outcome: Outcome) -> None:
        if self.failing_finishes:
            self.failing_finishes -= 1
            raise StoreError("recording the outcome: the database is gone (injected)")
        await self.inner.finish(outcome)
        self.finished.append(outcome)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Faulty]:
    opened = open_store(f"sqlite:///{tmp_path / 'photohook.db'}")
    await opened.open()
    yield Faulty(opened)
    await opened.close()


def app_destination(url: str, **options: Any) -> dict[str, HTTPDestination]:
    return {"app": HTTPDestination(name="app", url=f"{url}/hook", allow_private=True, **options)}


async def started(store: Faulty, destinations: dict[str, HTTPDestination]) -> Worker:
    worker = Worker(store, destinations, sweep_interval=SWEEP)  # type: ignore[arg-type]
    await worker.start()
    return worker


async def new_events(store: Faulty, count: int) -> list[str]:
    ids = []
    for index in range(count):
        stored = await store.store(receipt(f"task-{index}", destinations=("app",)))
        ids.extend(stored.new_event_ids)
    return ids


async def states(store: Faulty) -> list[str]:
    return [d.state for d in await store.list_deliveries(DeliveryQuery())]


async def test_a_claim_that_fails_in_the_store_is_tried_again_a_sweep_later(
    store: Faulty, sink_url: Callable[[Sink], str], caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    failure = StoreError("claiming deliveries: the database is gone (injected)")
    store.failing_claims = [failure] * 3
    worker = await started(store, app_destination(sink_url(sink)))
    try:
        [event_id] = await new_events(store, 1)
        await eventually(lambda: sink.ids == [event_id])
        await eventually(lambda: _is(states(store), ["delivered"]))
    finally:
        await worker.stop()
    # Each failed claim waited a sweep before the next: no busy loop against a failing database.
    gaps = [b - a for a, b in zip(store.claimed_at, store.claimed_at[1:4], strict=False)]
    assert len(gaps) == 3
    assert all(gap >= SWEEP * 0.9 for gap in gaps), gaps
    logged = [r for r in caplog.records if "injected" in r.getMessage()]
    assert len(logged) == 3
    assert all(r.levelno == logging.ERROR for r in logged)


async def test_a_finish_that_fails_leaves_the_lease_to_run_out_and_the_delivery_is_sent_again(
    store: Faulty, sink_url: Callable[[Sink], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At least once, never lost: the attempt was made but not recorded, so it is made again."""
    monkeypatch.setattr(receiver.delivery.worker, "LEASE_MARGIN", 0.0)
    timeout = 1.0  # the lease: twice the attempt's timeout
    sink = Sink()
    store.failing_finishes = 1
    worker = await started(store, app_destination(sink_url(sink), timeout=timeout, max_in_flight=1))
    try:
        [event_id] = await new_events(store, 1)
        await eventually(lambda: _is(states(store), ["delivered"]))
    finally:
        await worker.stop()
    assert sink.ids == [event_id, event_id]  # the same webhook-id: the receiver can deduplicate
    first, second = sink.received
    assert second.at - first.at >= 2 * timeout * 0.9  # not before the lease ran out
    [delivery] = await store.list_deliveries(DeliveryQuery())
    assert delivery.attempts == 1  # the first attempt's record was lost with its finish
    assert store.failing_finishes == 0


async def test_a_crashed_delivery_loop_logs_and_goes_on(
    store: Faulty, sink_url: Callable[[Sink], str], caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    store.failing_claims = [RuntimeError("a bug in claiming (injected)")]
    worker = await started(store, app_destination(sink_url(sink)))
    try:
        [event_id] = await new_events(store, 1)
        await eventually(lambda: sink.ids == [event_id])
        await eventually(lambda: _is(states(store), ["delivered"]))
    finally:
        await worker.stop()
    [crash] = [r for r in caplog.records if "the delivery loop failed" in r.getMessage()]
    assert crash.exc_info is not None
    assert "a bug in claiming" in str(crash.exc_info[1])


async def test_a_stop_that_times_out_leaves_deliveries_in_flight_to_another_worker(
    store: Faulty,
    sink_url: Callable[[Sink], str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(receiver.delivery.worker, "LEASE_MARGIN", 0.0)
    timeout = 2.0  # the lease: twice that
    sink = Sink(script=lambda n: Reply(delay=2 * timeout if n < 2 else 0))
    destinations = app_destination(sink_url(sink), timeout=timeout)
    worker = await started(store, destinations)
    [event_id, other_id] = await new_events(store, 2)
    await eventually(lambda: sink.in_flight == 2)
    clock = time.monotonic()
    await worker.stop(grace=0.2)
    assert time.monotonic() - clock < timeout / 2  # it waited neither for answers nor timeouts
    assert "left 2 deliveries in flight to be retried" in caplog.text
    assert store.finished == []  # nothing recorded: both are still leased
    assert await states(store) == ["pending", "pending"]
    # Once their leases run out, the next worker sends both again.
    successor = await started(store, destinations)
    try:
        await eventually(lambda: _is(states(store), ["delivered", "delivered"]), within=30)
    finally:
        await successor.stop()
    assert sorted(sink.ids[2:]) == sorted([event_id, other_id])


async def test_the_rate_limit_limits_attempts_in_any_second(
    store: Faulty, sink_url: Callable[[Sink], str]
) -> None:
    rate, count = 5, 16
    sink = Sink()
    worker = await started(store, app_destination(sink_url(sink), rate_limit=rate, max_in_flight=4))
    try:
        clock = time.monotonic()
        await new_events(store, count)
        await eventually(lambda: len(sink.received) == count, within=30)
        elapsed = time.monotonic() - clock
    finally:
        await worker.stop()
    arrivals = [r.at for r in sink.received]
    # Counted in two-second windows, two of slack for a busy machine's stalls (unlimited, all
    # 16 would come at once); and the whole takes at least as long as the rate allows.
    busiest = max(sum(1 for t in arrivals if start <= t < start + 2.0) for start in arrivals)
    assert busiest <= 2 * rate + 2, busiest
    assert elapsed >= (count - 1) / rate * 0.9


async def _is(found: Any, expected: list[str]) -> bool:
    return sorted(await found) == sorted(expected)
