"""The outbox: deliveries created with their events, leased, ordered, finished."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from receiver.store import (
    Attempt,
    DeliveryQuery,
    Outcome,
    Store,
    open_store,
    outbox,
    sqlstore,
    writes,
)
from receiver.store.tx import Tx

from .factories import receipt

NOW = time.time()
T = TypeVar("T")


def ok_attempt() -> Attempt:
    return Attempt(started_at=NOW, duration_ms=3.0, ok=True, status_code=200)


def failed_attempt(status: int = 500) -> Attempt:
    return Attempt(
        started_at=NOW, duration_ms=3.0, ok=False, status_code=status, error=f"HTTP {status}"
    )


async def deliveries(store: Store, **filters: object) -> list[tuple[str, str, str]]:
    found = await store.list_deliveries(DeliveryQuery(**filters))  # type: ignore[arg-type]
    return sorted((d.event_id, d.destination, d.state) for d in found)


async def test_deliveries_are_created_with_the_event_and_never_for_duplicates(store: Store) -> None:
    await store.sync_destinations(["app", "archive"])
    first = await store.store(receipt("t1", destinations=("app", "archive")))
    again = await store.store(receipt("t1", destinations=("app", "archive")))
    assert first.deliveries == 2
    assert again.duplicate and again.deliveries == 0
    [event_id] = first.event_ids
    assert await deliveries(store) == [
        (event_id, "app", "pending"),
        (event_id, "archive", "pending"),
    ]


async def test_a_status_that_moves_the_task_backwards_is_stored_not_delivered(store: Store) -> None:
    await store.sync_destinations(["app"])
    await store.store(receipt("t1", "completed", destinations=("app",)))
    late = await store.store(receipt("t1", "in_progress", destinations=("app",)))
    assert not late.duplicate and late.deliveries == 0
    states = {
        d.event_id: (d.state, d.last_error) for d in await store.list_deliveries(DeliveryQuery())
    }
    assert states[late.event_ids[0]][0] == "skipped"
    assert "superseded" in (states[late.event_ids[0]][1] or "")


async def test_claims_lease_and_respect_the_limit(store: Store) -> None:
    await store.sync_destinations(["app"])
    for index in range(5):
        await store.store(receipt(f"t{index}", destinations=("app",)))
    claims, _ = await store.claim({"app": 3}, "w1", 60, time.time())
    assert len(claims) == 3
    assert claims[0].event.task_id == "t0"
    more, _ = await store.claim({"app": 10}, "w2", 60, time.time())
    assert len(more) == 2  # the three leased ones are not handed out twice
    again, next_due = await store.claim({"app": 10}, "w3", 60, time.time())
    assert again == []
    assert next_due is not None and next_due > time.time() + 50  # when the leases expire


async def test_a_worker_saying_what_it_has_under_way_refills_places_still_leased(
    store: Store,
) -> None:
    await store.sync_destinations(["app"])
    for index in range(6):
        await store.store(receipt(f"t{index}", destinations=("app",)))
    now = time.time()
    assert len((await store.claim({"app": 2}, "w1", 60, now))[0]) == 2
    # Both answered, their outcomes not yet committed: leased still, but no longer under way.
    assert len((await store.claim({"app": 2}, "w1", 60, now, busy={"app": 0}))[0]) == 2
    # Another worker counts every lease w1 holds; and w1 counts what it says it has under way.
    assert (await store.claim({"app": 2}, "w2", 60, now, busy={}))[0] == []
    assert len((await store.claim({"app": 2}, "w1", 60, now, busy={"app": 1}))[0]) == 1


async def test_an_expired_lease_comes_back(store: Store) -> None:
    await store.sync_destinations(["app"])
    await store.store(receipt("t1", destinations=("app",)))
    [claim], _ = await store.claim({"app": 1}, "crashed", 0.01, time.time())
    [again], _ = await store.claim({"app": 1}, "w2", 60, time.time() + 1)
    assert again.delivery.id == claim.delivery.id
    # the crashed worker's late report does not overwrite the new owner's lease
    await store.finish(Outcome(claim.delivery.id, "crashed", ok_attempt(), "delivered"))
    [delivery] = await store.list_deliveries(DeliveryQuery())
    assert delivery.state == "pending"
    assert delivery.attempts == 0


async def test_per_task_order_holds_a_later_event_back(store: Store) -> None:
    await store.sync_destinations(["app", "other"])
    await store.store(receipt("t1", "in_progress", destinations=("app", "other")))
    await store.store(receipt("t1", "completed", destinations=("app",)))
    claims, _ = await store.claim({"app": 10, "other": 10}, "w", 60, time.time())
    assert sorted((c.event.status, c.delivery.destination) for c in claims) == [
        ("in_progress", "app"),
        ("in_progress", "other"),
    ]
    first = next(c for c in claims if c.delivery.destination == "app")
    retry_at = time.time() + 3600
    await store.finish(Outcome(first.delivery.id, "w", failed_attempt(), "retrying", retry_at))
    blocked, next_due = await store.claim({"app": 10}, "w", 60, time.time())
    assert blocked == []  # still waiting behind the retrying in_progress
    assert next_due is not None and abs(next_due - retry_at) < 1
    [again], _ = await store.claim({"app": 10}, "w", 60, retry_at)
    await store.finish(Outcome(again.delivery.id, "w", ok_attempt(), "delivered"))
    [completed], _ = await store.claim({"app": 10}, "w", 60, retry_at)
    assert completed.event.status == "completed"


async def test_finishing_records_attempts_and_states(store: Store) -> None:
    await store.sync_destinations(["app"])
    await store.store(receipt("t1", destinations=("app",)))
    [claim], _ = await store.claim({"app": 1}, "w", 60, time.time())
    await store.finish(Outcome(claim.delivery.id, "w", failed_attempt(503), "dead"))
    [dead] = await store.list_deliveries(DeliveryQuery(state="dead"))
    assert (dead.attempts, dead.last_status, dead.last_error) == (1, 503, "HTTP 503")
    assert await store.requeue(destination="other") == 0
    assert await store.requeue(delivery_id=dead.id) == 1
    [claim], _ = await store.claim({"app": 1}, "w", 60, time.time())
    assert claim.delivery.tries == 0  # the schedule starts over
    assert claim.delivery.attempts == 1
    await store.finish(Outcome(claim.delivery.id, "w", ok_attempt(), "delivered"))
    [delivered] = await store.list_deliveries(DeliveryQuery())
    assert (delivered.state, delivered.attempts) == ("delivered", 2)
    [status] = await store.destination_statuses(time.time())
    assert (status.attempts_last_hour, status.successes_last_hour) == (2, 1)
    assert status.last_error == "HTTP 503"
    assert status.queue_depth == 0


async def test_a_destinations_last_error_is_its_latest_failure(store: Store) -> None:
    await store.sync_destinations(["app", "other"])
    for index in range(2):
        await store.store(receipt(f"t{index}", destinations=("app", "other")))
    claims, _ = await store.claim({"app": 2, "other": 2}, "w", 60, time.time())
    first, second = (c for c in claims if c.delivery.destination == "app")
    refused = Attempt(started_at=NOW, duration_ms=1.0, ok=False, error="ConnectError: refused")
    await store.finish(Outcome(first.delivery.id, "w", refused, "retrying", NOW + 60))
    await store.finish(Outcome(second.delivery.id, "w", failed_attempt(502), "retrying", NOW + 60))
    for claim in claims:
        if claim.delivery.destination == "other":
            await store.finish(Outcome(claim.delivery.id, "w", ok_attempt(), "delivered"))
    statuses = await store.destination_statuses(time.time())
    assert {s.name: s.last_error for s in statuses} == {"app": "HTTP 502", "other": None}
    assert {s.name: s.attempts_last_hour for s in statuses} == {"app": 2, "other": 2}


async def test_gone_disables_the_destination_and_holds_its_deliveries(store: Store) -> None:
    await store.sync_destinations(["app", "other"])
    for index in range(3):
        await store.store(receipt(f"t{index}", destinations=("app", "other")))
    [claim], _ = await store.claim({"app": 1}, "w", 60, time.time())
    await store.finish(
        Outcome(claim.delivery.id, "w", failed_attempt(410), "held", None, "app answered 410 Gone")
    )
    assert {state for _, _, state in await deliveries(store, destination="app")} == {"held"}
    claims, _ = await store.claim({"app": 5, "other": 5}, "w", 60, time.time())
    assert {c.delivery.destination for c in claims} == {"other"}  # the others are not delayed
    statuses = {s.name: s for s in await store.destination_statuses(time.time())}
    assert (statuses["app"].state, statuses["app"].reason) == ("disabled", "app answered 410 Gone")
    assert statuses["app"].queue_depth == 3
    assert await store.set_destination_state("app", "active", None)
    states = await deliveries(store, destination="app")
    assert sorted(state for _, _, state in states) == ["pending", "pending", "retrying"]
    assert not await store.set_destination_state("nope", "paused", None)


async def test_pause_holds_and_resume_releases(store: Store) -> None:
    await store.sync_destinations(["app"])
    await store.store(receipt("t1", destinations=("app",)))
    await store.set_destination_state("app", "paused", "maintenance")
    assert await store.claim({"app": 5}, "w", 60, time.time()) == ([], None)
    assert await deliveries(store) == [(await _only_event(store), "app", "held")]
    await store.set_destination_state("app", "active", None)
    claims, _ = await store.claim({"app": 5}, "w", 60, time.time())
    assert len(claims) == 1


async def test_replay_adds_deliveries(store: Store) -> None:
    await store.sync_destinations(["app"])
    stored = await store.store(receipt("t1"))
    assert await deliveries(store) == []
    [delivery_id] = await store.add_deliveries(stored.event_ids[0], ["app"])
    assert delivery_id.startswith("dlv_")
    assert await store.add_deliveries("evt_missing", ["app"]) == []
    [claim], _ = await store.claim({"app": 1}, "w", 60, time.time())
    assert claim.event.id == stored.event_ids[0]


async def _only_event(store: Store) -> str:
    [delivery] = await store.list_deliveries(DeliveryQuery())
    return delivery.event_id


async def test_callbacks_wait_for_the_disk_and_a_workers_leases_and_outcomes_do_not(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lease or an outcome lost to a power failure costs a delivery sent again, which
    at-least-once allows; a callback answered 200 must be on disk."""
    flushed: dict[str, set[bool]] = {}

    def noting(name: str, work: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def spied(tx: Tx, *args: Any) -> T:
            if tx.dialect.name == "sqlite":
                [(level,)] = await tx.fetch("PRAGMA synchronous")
                flushes = level == 2  # FULL
            else:
                [(setting,)] = await tx.fetch("SHOW synchronous_commit")
                flushes = setting == "on"
            flushed.setdefault(name, set()).add(flushes)
            return await work(tx, *args)

        return spied

    monkeypatch.setattr(writes, "write_batch", noting("store", writes.write_batch))
    monkeypatch.setattr(outbox, "claim", noting("claim", outbox.claim))
    monkeypatch.setattr(sqlstore, "_finish", noting("finish", sqlstore._finish))
    store = open_store(database_url)
    await store.open()
    try:
        await store.sync_destinations(["app"])
        for index in range(2):
            await store.store(receipt(f"t{index}", destinations=("app",)))
            [claim], _ = await store.claim({"app": 1}, "w1", 60, time.time())
            await store.finish(Outcome(claim.delivery.id, "w1", ok_attempt(), "delivered"))
    finally:
        await store.close()
    assert flushed == {"store": {True}, "claim": {False}, "finish": {False}}
