from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from receiver.store import Attempt, DeliveryQuery, EventQuery, Outcome, Pruned, Store

from .factories import receipt


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
