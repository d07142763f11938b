"""The delivery worker against a real SQLite store and real sinks on loopback: the rate limit,
retries by the schedule, what a held (410) or dead delivery records; and when things go wrong:
its store fails, its loop crashes, it is stopped with deliveries in flight. The store's faults
are injected around the real store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import receiver.delivery.worker
from receiver.delivery import worker as worker_module
from receiver.delivery.worker import Worker
from receiver.destinations import HandlerDestination, HTTPDestination
from receiver.errors import StoreError
from receiver.events import Event
from receiver.retry import RetrySchedule
from receiver.store import DeliveryQuery, Outcome, Store, open_store
from tests.store.factories import receipt

from .servers import Reply, Sink, eventually


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
    # The k-th attempt has its turn k tenths of a second after the first (a turn can start a
    # little late under load, so it is the cumulative spacing that holds, not each gap).
    since_first = [moment - called[0] for moment in called]
    assert all(since >= 0.1 * k - 0.005 for k, since in enumerate(since_first)), since_first
    assert since_first[-1] < 0.85, since_first  # the configured rate, not a slower one


async def _states_are(store: Store, expected: list[str]) -> bool:
    return await states(store) == expected


async def test_a_woken_worker_delivers_at_once_not_at_its_next_sweep(store: Store) -> None:
    await store.sync_destinations(["app"])
    called: list[float] = []

    async def handler(event: Event) -> None:
        called.append(time.monotonic())

    destination = HandlerDestination(name="app", handler=handler)
    worker = Worker(store, {"app": destination}, sweep_interval=30)
    await worker.start()
    try:
        await asyncio.sleep(0.2)  # the first sweep has found nothing; the next is 30 s away
        await store.store(receipt("t1", destinations=("app",)))
        stored = time.monotonic()
        worker.wake()  # as ingest does after each commit with deliveries
        await eventually(lambda: _states_are(store, ["delivered"]), within=10)
    finally:
        await worker.stop()
    assert called[0] - stored < 10


async def test_a_retry_is_sent_when_it_falls_due_not_at_the_next_sweep(store: Store) -> None:
    await store.sync_destinations(["app"])
    await store.store(receipt("t1", destinations=("app",)))
    called: list[float] = []

    async def fails_once(event: Event) -> None:
        called.append(time.monotonic())
        if len(called) == 1:
            raise RuntimeError("not yet")

    schedule = RetrySchedule(delays=(0.3,), jitter=0.0)
    destination = HandlerDestination(name="app", handler=fails_once, retry=schedule)
    worker = Worker(store, {"app": destination}, sweep_interval=30)
    await worker.start()
    try:
        await eventually(lambda: _states_are(store, ["delivered"]), within=10)
    finally:
        await worker.stop()
    assert len(called) == 2
    assert 0.29 <= called[1] - called[0] < 10


async def test_stop_waits_out_the_grace_then_leaves_the_rest_to_be_retried(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    await store.sync_destinations(["quick", "stuck"])
    await store.store(receipt("t1", destinations=("quick", "stuck")))
    started: list[str] = []

    async def quick(event: Event) -> None:
        started.append("quick")
        await asyncio.sleep(0.2)

    async def stuck(event: Event) -> None:
        started.append("stuck")
        await asyncio.sleep(60)

    destinations = {
        "quick": HandlerDestination(name="quick", handler=quick),
        "stuck": HandlerDestination(name="stuck", handler=stuck),
    }
    worker = Worker(store, destinations, sweep_interval=0.05)
    await worker.start()
    await eventually(lambda: sorted(started) == ["quick", "stuck"])
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, "photohook.worker"):
        await worker.stop(grace=1.0)
    assert time.monotonic() - began < 10
    assert "left 1 deliveries in flight to be retried" in caplog.messages
    deliveries = {d.destination: d for d in await store.list_deliveries(DeliveryQuery())}
    assert deliveries["quick"].state == "delivered"  # finished within the grace
    assert deliveries["stuck"].state != "delivered"
    assert deliveries["stuck"].attempts == 0  # no attempt recorded: its lease runs out


async def test_a_delivery_in_flight_is_not_sent_again_by_another_worker(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its lease outlasts the attempt's timeout: the other worker only takes it over once the
    # first could no longer be sending it. Without the fixed margin, the timeout alone must
    # make the lease long enough.
    monkeypatch.setattr(worker_module, "LEASE_MARGIN", 0.1)
    await store.sync_destinations(["app"])
    await store.store(receipt("t1", destinations=("app",)))
    calls: list[str] = []

    async def slow(event: Event) -> None:
        calls.append(event.id)
        await asyncio.sleep(1.5)

    destination = HandlerDestination(name="app", handler=slow, timeout=3.0)
    workers = [Worker(store, {"app": destination}, sweep_interval=0.05) for _ in range(2)]
    for worker in workers:
        await worker.start()
    try:
        await eventually(lambda: _states_are(store, ["delivered"]), within=10)
    finally:
        for worker in workers:
            await worker.stop()
    assert len(calls) == 1


async def test_deliveries_waiting_behind_a_slow_rate_limit_are_not_taken_over(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Claimed together, the third waits two turns of a rate of one every 2 s: its lease must
    # cover those turns, or a second worker takes it over and it is sent twice.
    monkeypatch.setattr(worker_module, "LEASE_MARGIN", 0.1)
    await store.sync_destinations(["app"])
    for index in range(3):
        await store.store(receipt(f"t{index}", destinations=("app",)))
    calls: list[str] = []

    async def handler(event: Event) -> None:
        calls.append(event.id)

    destination = HandlerDestination(
        name="app", handler=handler, timeout=0.2, max_in_flight=3, rate_limit=0.5
    )
    first = Worker(store, {"app": destination}, sweep_interval=0.05)
    await first.start()
    await eventually(lambda: len(calls) == 1)
    second = Worker(store, {"app": destination}, sweep_interval=0.05)
    await second.start()
    try:
        await eventually(lambda: _states_are(store, ["delivered"] * 3), within=15)
    finally:
        await first.stop()
        await second.stop()
    assert sorted(calls) == sorted(set(calls)) and len(calls) == 3


@pytest.mark.parametrize(
    ("fault", "logged"),
    [
        (
            StoreError("cannot claim: the database is locked"),
            "cannot claim: the database is locked",
        ),
        (RuntimeError("a bug"), "the delivery loop failed; trying again"),
    ],
)
async def test_a_failed_claim_is_logged_and_tried_again(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: Exception,
    logged: str,
) -> None:
    await store.sync_destinations(["app"])
    await store.store(receipt("t1", destinations=("app",)))
    claim = store.claim
    failures = [fault, fault]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await claim(*args, **kwargs)

    monkeypatch.setattr(store, "claim", flaky)

    async def handler(event: Event) -> None:
        pass

    worker = Worker(
        store, {"app": HandlerDestination(name="app", handler=handler)}, sweep_interval=0.05
    )
    with caplog.at_level(logging.ERROR, "photohook.worker"):
        await worker.start()
        try:
            await eventually(lambda: _states_are(store, ["delivered"]), within=10)
        finally:
            await worker.stop()
    assert caplog.messages.count(logged) == 2


async def test_an_outcome_that_cannot_be_recorded_is_logged_and_sent_again(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # At least once: the lease runs out and the delivery is sent again, never lost.
    monkeypatch.setattr(worker_module, "LEASE_MARGIN", 0.1)
    await store.sync_destinations(["app"])
    await store.store(receipt("t1", destinations=("app",)))
    finish = store.finish
    failures = [StoreError("cannot record: the disk is full")]

    async def flaky(outcome: Any) -> None:
        if failures:
            raise failures.pop()
        await finish(outcome)

    monkeypatch.setattr(store, "finish", flaky)
    calls: list[str] = []

    async def handler(event: Event) -> None:
        calls.append(event.id)

    destination = HandlerDestination(name="app", handler=handler, timeout=0.2)
    worker = Worker(store, {"app": destination}, sweep_interval=0.05)
    with caplog.at_level(logging.ERROR, "photohook.worker"):
        await worker.start()
        try:
            await eventually(lambda: _states_are(store, ["delivered"]), within=10)
        finally:
            await worker.stop()
    assert len(calls) == 2
    [delivery] = await store.list_deliveries(DeliveryQuery())
    assert [m for m in caplog.messages if m.startswith("cannot record delivery")] == [
        f"cannot record delivery {delivery.id}: cannot record: the disk is full"
    ]


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
async def faulty(tmp_path: Path) -> AsyncIterator[Faulty]:
    opened = open_store(f"sqlite:///{tmp_path / 'photohook.db'}")
    await opened.open()
    yield Faulty(opened)
    await opened.close()


def app_destination(url: str, **options: Any) -> dict[str, HTTPDestination]:
    return {"app": HTTPDestination(name="app", url=f"{url}/hook", allow_private=True, **options)}


async def started(faulty: Faulty, destinations: dict[str, HTTPDestination]) -> Worker:
    worker = Worker(faulty, destinations, sweep_interval=SWEEP)  # type: ignore[arg-type]
    await worker.start()
    return worker


async def new_events(faulty: Faulty, count: int) -> list[str]:
    ids = []
    for index in range(count):
        stored = await faulty.store(receipt(f"task-{index}", destinations=("app",)))
        ids.extend(stored.new_event_ids)
    return ids


async def delivery_states(faulty: Faulty) -> list[str]:
    return [d.state for d in await faulty.list_deliveries(DeliveryQuery())]


async def test_a_claim_that_fails_in_the_store_is_tried_again_a_sweep_later(
    faulty: Faulty, sink_url: Callable[[Sink], str], caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    failure = StoreError("claiming deliveries: the database is gone (injected)")
    faulty.failing_claims = [failure] * 3
    worker = await started(faulty, app_destination(sink_url(sink)))
    try:
        [event_id] = await new_events(faulty, 1)
        await eventually(lambda: sink.ids == [event_id])
        await eventually(lambda: _is(delivery_states(faulty), ["delivered"]))
    finally:
        await worker.stop()
    # Each failed claim waited a sweep before the next: no busy loop against a failing database.
    gaps = [b - a for a, b in zip(faulty.claimed_at, faulty.claimed_at[1:4], strict=False)]
    assert len(gaps) == 3
    assert all(gap >= SWEEP * 0.9 for gap in gaps), gaps
    logged = [r for r in caplog.records if "injected" in r.getMessage()]
    assert len(logged) == 3
    assert all(r.levelno == logging.ERROR for r in logged)


async def test_a_finish_that_fails_leaves_the_lease_to_run_out_and_the_delivery_is_sent_again(
    faulty: Faulty, sink_url: Callable[[Sink], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At least once, never lost: the attempt was made but not recorded, so it is made again."""
    monkeypatch.setattr(receiver.delivery.worker, "LEASE_MARGIN", 0.0)
    timeout = 1.0  # the lease: twice the attempt's timeout
    sink = Sink()
    faulty.failing_finishes = 1
    worker = await started(
        faulty, app_destination(sink_url(sink), timeout=timeout, max_in_flight=1)
    )
    try:
        [event_id] = await new_events(faulty, 1)
        await eventually(lambda: _is(delivery_states(faulty), ["delivered"]))
    finally:
        await worker.stop()
    assert sink.ids == [event_id, event_id]  # the same webhook-id: the receiver can deduplicate
    first, second = sink.received
    assert second.at - first.at >= 2 * timeout * 0.9  # not before the lease ran out
    [delivery] = await faulty.list_deliveries(DeliveryQuery())
    assert delivery.attempts == 1  # the first attempt's record was lost with its finish
    assert faulty.failing_finishes == 0


async def test_a_crashed_delivery_loop_logs_and_goes_on(
    faulty: Faulty, sink_url: Callable[[Sink], str], caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    faulty.failing_claims = [RuntimeError("a bug in claiming (injected)")]
    worker = await started(faulty, app_destination(sink_url(sink)))
    try:
        [event_id] = await new_events(faulty, 1)
        await eventually(lambda: sink.ids == [event_id])
        await eventually(lambda: _is(delivery_states(faulty), ["delivered"]))
    finally:
        await worker.stop()
    [crash] = [r for r in caplog.records if "the delivery loop failed" in r.getMessage()]
    assert crash.exc_info is not None
    assert "a bug in claiming" in str(crash.exc_info[1])


async def test_a_stop_that_times_out_leaves_deliveries_in_flight_to_another_worker(
    faulty: Faulty,
    sink_url: Callable[[Sink], str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(receiver.delivery.worker, "LEASE_MARGIN", 0.0)
    timeout = 2.0  # the lease: twice that
    sink = Sink(script=lambda n: Reply(delay=2 * timeout if n < 2 else 0))
    destinations = app_destination(sink_url(sink), timeout=timeout)
    worker = await started(faulty, destinations)
    [event_id, other_id] = await new_events(faulty, 2)
    await eventually(lambda: sink.in_flight == 2)
    clock = time.monotonic()
    await worker.stop(grace=0.2)
    assert time.monotonic() - clock < timeout / 2  # it waited neither for answers nor timeouts
    assert "left 2 deliveries in flight to be retried" in caplog.text
    assert faulty.finished == []  # nothing recorded: both are still leased
    assert await delivery_states(faulty) == ["pending", "pending"]
    # Once their leases run out, the next worker sends both again.
    successor = await started(faulty, destinations)
    try:
        await eventually(
            lambda: _is(delivery_states(faulty), ["delivered", "delivered"]), within=30
        )
    finally:
        await successor.stop()
    assert sorted(sink.ids[2:]) == sorted([event_id, other_id])


async def test_the_rate_limit_limits_attempts_in_any_second(
    faulty: Faulty, sink_url: Callable[[Sink], str]
) -> None:
    rate, count = 5, 16
    sink = Sink()
    worker = await started(
        faulty, app_destination(sink_url(sink), rate_limit=rate, max_in_flight=4)
    )
    try:
        clock = time.monotonic()
        await new_events(faulty, count)
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
