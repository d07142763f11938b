"""Batches in the store, on both engines: tasks join by rule or by declaration, their first final
status counts once, and each batch gets exactly one batch.completed or batch.expired event."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from receiver.errors import Conflict
from receiver.events import Event
from receiver.store import (
    BatchDeclaration,
    BatchQuery,
    BatchRule,
    EventQuery,
    Receipt,
    Store,
    open_store,
)
from receiver.store import batch_events as store_batch_events

from .factories import receipt

RULE = BatchRule(key=re.compile(r"^(order-\d+)-"))


def routed(event: Event) -> tuple[str, ...]:
    return ("sink",) if event.type.startswith("batch.") else ()


def task(
    task_id: str,
    status: str = "completed",
    *,
    business_id: str | None = None,
    rule: BatchRule | None = RULE,
    labels: tuple[str, ...] = (),
) -> Receipt:
    """A Fotor callback of ``task_id`` whose business id puts it in a batch by ``rule``."""
    plain = receipt(task_id, status, terminal=status in ("completed", "failed"))
    events = tuple(
        msgspec.structs.replace(
            new,
            event=dataclasses.replace(new.event, business_id=business_id, labels=labels),
            batching=rule,
        )
        for new in plain.events
    )
    return msgspec.structs.replace(plain, events=events, route=routed)


async def batch_events(store: Store, batch_id: str | None = None) -> list[Event]:
    return await store.list_events(EventQuery(source="batches", task_id=batch_id, limit=1000))


async def test_a_rule_batch_with_expected_completes_once_whatever_the_order(store: Store) -> None:
    rule = dataclasses.replace(RULE, expected=3)
    await store.store(task("t2", business_id="order-7-b", rule=rule))
    await store.store(task("t1", "in_progress", business_id="order-7-a", rule=rule))
    await store.store(task("t2", business_id="order-7-b", rule=rule))  # a resend
    assert await batch_events(store) == []
    await store.store(task("t3", "failed", business_id="order-7-c", rule=rule))
    assert await batch_events(store) == []
    await store.store(task("t1", business_id="order-7-a", rule=rule))
    [event] = await batch_events(store)
    assert (event.type, event.task_id, event.status, event.kind) == (
        "batch.completed",
        "order-7",
        "completed",
        "batch",
    )
    assert event.payload["counts"] == {"completed": 2, "failed": 1, "total": 3}
    assert {t["task_id"]: t["status"] for t in event.payload["tasks"]} == {
        "t1": "completed",
        "t2": "completed",
        "t3": "failed",
    }
    assert event.payload["tasks"][0]["result_urls"] == ["https://cdn.example.com/r.png"]
    deliveries = await store.deliveries_of([event.id])
    assert [d.destination for d in deliveries[event.id]] == ["sink"]
    await store.store(task("t1", business_id="order-7-a", rule=rule))  # late resends
    await store.store(task("t3", "failed", business_id="order-7-c", rule=rule))
    assert len(await batch_events(store)) == 1
    detail = await store.batch_detail("order-7")
    assert detail is not None
    assert (detail[0].state, detail[0].event_id, detail[0].size) == ("completed", event.id, 3)


async def test_a_task_counts_its_first_final_status_only(store: Store) -> None:
    rule = dataclasses.replace(RULE, expected=2)
    await store.store(task("t1", "completed", business_id="order-1-a", rule=rule))
    await store.store(task("t1", "failed", business_id="order-1-a", rule=rule))
    assert await batch_events(store) == []
    await store.store(task("t2", "completed", business_id="order-1-b", rule=rule))
    [event] = await batch_events(store)
    assert event.payload["counts"] == {"completed": 2, "failed": 0, "total": 2}


async def test_a_rule_batch_without_size_completes_when_closed(store: Store) -> None:
    for name in ("a", "b"):
        await store.store(task(f"t-{name}", business_id=f"order-2-{name}"))
    [listed] = await store.list_batches(BatchQuery())
    assert (listed.id, listed.state, listed.size, listed.completed) == ("order-2", "open", None, 2)
    assert await batch_events(store) == []
    closed = await store.close_batch("order-2", routed)
    assert closed is not None and closed.state == "completed"
    [event] = await batch_events(store)
    assert event.payload["counts"]["total"] == 2
    assert await store.close_batch("order-2", routed) == closed  # closing again changes nothing
    assert await store.close_batch("no-such-batch", routed) is None
    # A task coming after its batch closed does not join it.
    await store.store(task("t-c", business_id="order-2-c"))
    detail = await store.batch_detail("order-2")
    assert detail is not None and len(detail[1]) == 2


async def test_labels_name_batches(store: Store) -> None:
    rule = BatchRule(labels=True, expected=1)
    await store.store(task("t1", labels=("spring", "homepage"), rule=rule))
    events = await batch_events(store)
    assert sorted(e.task_id for e in events) == ["homepage", "spring"]


async def test_tasks_final_before_their_batch_was_declared_count(store: Store) -> None:
    await store.store(task("x1", rule=None))
    await store.store(task("x2", "failed", rule=None))
    await store.store(task("x3", "in_progress", rule=None))
    declared = await store.declare_batch(
        BatchDeclaration("manual", tasks=(("fotor", "x1"), ("fotor", "x2"), ("fotor", "x3"))),
        routed,
    )
    assert (declared.state, declared.closed, declared.completed, declared.failed) == (
        "open",
        True,
        1,
        1,
    )
    await store.store(task("x3", rule=None))
    [event] = await batch_events(store, "manual")
    assert event.payload["counts"] == {"completed": 2, "failed": 1, "total": 3}


async def test_an_explicit_batch_completes_as_it_is_declared_if_all_are_final(
    store: Store,
) -> None:
    await store.store(task("y1", rule=None))
    done = await store.declare_batch(BatchDeclaration("now", tasks=(("fotor", "y1"),)), routed)
    assert done.state == "completed"
    assert len(await batch_events(store, "now")) == 1
    with pytest.raises(Conflict, match="is completed"):
        await store.declare_batch(BatchDeclaration("now", tasks=(("fotor", "y2"),)), routed)


async def test_an_open_explicit_batch_is_extended_then_sized(store: Store) -> None:
    first = BatchDeclaration("grow", tasks=(("fotor", "z1"),), closed=False)
    assert (await store.declare_batch(first, routed)).closed is False
    await store.store(task("z1", rule=None))
    await store.declare_batch(BatchDeclaration("grow", tasks=(("fotor", "z2"),)), routed)
    await store.store(task("z2", rule=None))
    assert await batch_events(store) == []  # its size is not known yet
    sized = await store.declare_batch(BatchDeclaration("grow", expected=2), routed)
    assert sized.state == "completed"
    with pytest.raises(Conflict, match="is completed"):
        await store.declare_batch(BatchDeclaration("grow", expected=2), routed)


async def test_a_closed_batch_refuses_new_tasks_and_another_size(store: Store) -> None:
    await store.declare_batch(BatchDeclaration("fixed", tasks=(("fotor", "a"),)), routed)
    with pytest.raises(Conflict, match="closed"):
        await store.declare_batch(BatchDeclaration("fixed", tasks=(("fotor", "b"),)), routed)
    await store.declare_batch(BatchDeclaration("fixed", tasks=(("fotor", "a"),)), routed)
    await store.declare_batch(BatchDeclaration("sized", expected=3), routed)
    with pytest.raises(Conflict, match="expects 3"):
        await store.declare_batch(BatchDeclaration("sized", expected=4), routed)


async def test_a_batch_past_its_deadline_expires_once_naming_what_is_missing(
    store: Store,
) -> None:
    rule = dataclasses.replace(RULE, expected=3, deadline=0.2)
    await store.store(task("d1", business_id="order-9-a", rule=rule))
    await store.store(task("d2", "in_progress", business_id="order-9-b", rule=rule))
    assert await store.sweep_batches(routed) == []
    await asyncio.sleep(0.3)
    [event_id] = await store.sweep_batches(routed)
    assert await store.sweep_batches(routed) == []
    [event] = await batch_events(store)
    assert (event.id, event.type, event.status) == (event_id, "batch.expired", "expired")
    assert event.payload["outstanding"] == [{"source": "fotor", "task_id": "d2"}]
    assert event.payload["missing"] == 1
    assert event.payload["counts"] == {"completed": 1, "failed": 0, "total": 2}
    # The missing task's result, when it comes, finishes nothing more.
    await store.store(task("d2", business_id="order-9-b", rule=rule))
    assert len(await batch_events(store)) == 1
    [expired] = await store.list_batches(BatchQuery(state="expired"))
    assert expired.id == "order-9"


async def test_a_large_batch_event_lists_its_first_tasks_and_says_how_many_it_left_out(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_batch_events, "LISTED", 3)
    for n in range(5):
        await store.store(task(f"big{n}", rule=None))
    tasks = tuple(("fotor", f"big{n}") for n in range(5))
    await store.declare_batch(BatchDeclaration("big", tasks=tasks), routed)
    [event] = await batch_events(store, "big")
    assert [t["task_id"] for t in event.payload["tasks"]] == ["big0", "big1", "big2"]
    assert event.payload["tasks_omitted"] == 2
    assert event.payload["counts"] == {"completed": 5, "failed": 0, "total": 5}


async def test_a_large_expired_batch_names_its_first_outstanding_tasks(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_batch_events, "LISTED", 2)
    await store.store(task("o0", rule=None))
    tasks = tuple(("fotor", f"o{n}") for n in range(5))
    await store.declare_batch(BatchDeclaration("late", tasks=tasks, deadline=time.time()), routed)
    await store.sweep_batches(routed)
    [event] = await batch_events(store, "late")
    assert event.type == "batch.expired"
    assert event.payload["outstanding"] == [
        {"source": "fotor", "task_id": "o1"},
        {"source": "fotor", "task_id": "o2"},
    ]
    assert event.payload["outstanding_omitted"] == 2
    assert (len(event.payload["tasks"]), event.payload["tasks_omitted"]) == (2, 3)


async def test_a_batch_event_within_the_limit_omits_nothing(store: Store) -> None:
    await store.store(task("s1", rule=None))
    await store.declare_batch(BatchDeclaration("small", tasks=(("fotor", "s1"),)), routed)
    [event] = await batch_events(store, "small")
    assert "tasks_omitted" not in event.payload and len(event.payload["tasks"]) == 1


async def test_listing_pages_newest_first(store: Store) -> None:
    for index in range(5):
        await store.declare_batch(BatchDeclaration(f"b{index}", expected=9), routed)
        await asyncio.sleep(0.002)
    first = await store.list_batches(BatchQuery(limit=2))
    assert [b.id for b in first] == ["b4", "b3"]
    rest = await store.list_batches(BatchQuery(before="b3", limit=10))
    assert [b.id for b in rest] == ["b2", "b1", "b0"]
    assert await store.list_batches(BatchQuery(state="completed")) == []


async def test_fifty_tasks_stored_concurrently_by_two_stores_complete_once(
    database_url: str,
) -> None:
    """Two stores (on PostgreSQL, two pools: as two receivers) store a 50-task batch's
    callbacks concurrently, out of order, with resends: one batch.completed."""
    stores = [open_store(database_url) for _ in range(2)]
    for opened in stores:
        await opened.open()
    try:
        rule = dataclasses.replace(RULE, expected=50)
        callbacks = [
            task(f"c{n}", "failed" if n % 10 == 0 else "completed", business_id=f"order-5-{n}")
            for n in range(50)
        ]
        callbacks = [
            msgspec.structs.replace(
                c, events=tuple(msgspec.structs.replace(new, batching=rule) for new in c.events)
            )
            for c in callbacks
        ]
        sends = callbacks + random.sample(callbacks, 20)
        random.shuffle(sends)
        started = time.perf_counter()
        await asyncio.gather(*(stores[n % 2].store(callback) for n, callback in enumerate(sends)))
        elapsed = time.perf_counter() - started
        [event] = await batch_events(stores[0])
        assert event.payload["counts"] == {"completed": 45, "failed": 5, "total": 50}
        print(f"50 tasks, 70 callbacks, two stores: {elapsed:.3f}s")
    finally:
        for opened in stores:
            await opened.close()


async def test_a_finished_batch_goes_with_its_pruned_event(store: Store) -> None:
    await store.store(task("p1", rule=None))
    await store.declare_batch(BatchDeclaration("old", tasks=(("fotor", "p1"),)))
    await store.declare_batch(BatchDeclaration("still-open", expected=2))
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert (await store.prune(later, dry_run=True)).batches == 1
    assert (await store.prune(later)).batches == 1
    assert await store.batch_detail("old") is None
    assert [b.id for b in await store.list_batches(BatchQuery())] == ["still-open"]


async def test_the_sweep_completes_a_batch_whose_final_status_missed_it(store: Store) -> None:
    """A declaration racing a task's final callback in another process can leave the task's
    final status unrecorded on its batch (each transaction missed the other's): the sweep
    records it and completes the batch."""
    await store.store(task("m1", rule=None))
    raced = (  # what the declaration wrote, not seeing the callback's uncommitted event
        "INSERT INTO batches (id, state, closed, created_at, updated_at)"
        " VALUES ('raced', 'open', 1, 0, 0)",
        "INSERT INTO batch_tasks (batch_id, source, task_id, added_at)"
        " VALUES ('raced', 'fotor', 'm1', 0)",
    )
    for statement in raced:
        await store._run("racing", lambda tx, s=statement: tx.execute(s))  # type: ignore[attr-defined]
    [event_id] = await store.sweep_batches(routed)
    detail = await store.batch_detail("raced")
    assert detail is not None and detail[0].state == "completed"
    assert detail[1][0].status == "completed" and detail[0].event_id == event_id
    assert await store.sweep_batches(routed) == []


async def test_an_open_batch_whose_event_exists_is_marked_finished_not_sent_again(
    store: Store,
) -> None:
    """Should a batch be open with its event stored (a partial import, a hand edit), finishing
    it again takes the stored event instead of failing every sweep on the events' key."""
    rule = dataclasses.replace(RULE, expected=1, deadline=0.01)
    await store.store(task("e1", business_id="order-3-a", rule=rule))
    [event] = await batch_events(store)
    await store._run(  # type: ignore[attr-defined]
        "reopening", lambda tx: tx.execute("UPDATE batches SET state = 'open', event_id = NULL")
    )
    await asyncio.sleep(0.02)
    assert await store.sweep_batches(routed) == []
    detail = await store.batch_detail("order-3")
    assert detail is not None and (detail[0].state, detail[0].event_id) == ("completed", event.id)
    assert len(await batch_events(store)) == 1
