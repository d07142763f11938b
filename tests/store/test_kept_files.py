"""Kept result files in the store, on both engines: an event with ``keep_results`` has its
deliveries planned as keeping until its last file is kept or missing; files are leased to one
keeper at a time; the claimed event carries its kept files; retention marks them pruned."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta

import msgspec

from receiver.states import DeliveryState, KeptState
from receiver.store import DeliveryQuery, FileOutcome, Receipt, Store, Tracking
from tests.store.factories import receipt


def keeping(task_id: str, *, urls: tuple[str, ...], destinations: tuple[str, ...]) -> Receipt:
    fresh = receipt(task_id, destinations=destinations)
    events = tuple(
        msgspec.structs.replace(
            new, event=dataclasses.replace(new.event, result_urls=urls), keep=True
        )
        for new in fresh.events
    )
    return msgspec.structs.replace(fresh, events=events)


def kept(event_id: str, position: int, worker: str) -> FileOutcome:
    return FileOutcome(
        event_id,
        position,
        worker,
        KeptState.KEPT,
        storage_key=f"{event_id}/{position}",
        size=3,
        content_type="image/png",
        sha256="ab" * 32,
    )


async def states(store: Store, event_id: str) -> set[str]:
    return {d.state for d in await store.list_deliveries(DeliveryQuery(event_id=event_id))}


async def test_deliveries_wait_for_every_file_then_go_out_with_them(store: Store) -> None:
    await store.sync_destinations(["sink"])
    urls = ("https://cdn.example.com/a.png", "https://cdn.example.com/b.png")
    stored = await store.store(keeping("t1", urls=urls, destinations=("sink",)))
    assert stored.files == 2
    [event_id] = stored.new_event_ids
    assert await states(store, event_id) == {DeliveryState.KEEPING}
    now = time.time()
    claims, _ = await store.claim({"sink": 4}, "w", 30, now)
    assert claims == []  # keeping deliveries are never claimed

    files, _ = await store.claim_files("keeper-1", 10, 60, now)
    assert [(f.event_id, f.position, f.url) for f in files] == [
        (event_id, 0, urls[0]),
        (event_id, 1, urls[1]),
    ]
    again, _ = await store.claim_files("keeper-2", 10, 60, now)
    assert again == []  # leased to keeper-1

    assert not await store.finish_file(kept(event_id, 0, "keeper-1"))
    assert await states(store, event_id) == {DeliveryState.KEEPING}
    missing = FileOutcome(event_id, 1, "keeper-1", KeptState.MISSING, error="HTTP 404")
    assert await store.finish_file(missing)
    assert await states(store, event_id) == {DeliveryState.PENDING}

    detail = await store.event_detail(event_id)
    assert detail is not None
    assert [(f.state, f.last_error) for f in detail.files] == [
        ("kept", None),
        ("missing", "HTTP 404"),
    ]

    [claim], _ = await store.claim({"sink": 4}, "w", 30, time.time())
    results = claim.event.kept_results
    assert [(k.url, k.status, k.position) for k in results] == [
        (urls[0], "kept", 0),
        (urls[1], "missing", 1),
    ]
    assert results[0].sha256 == "ab" * 32 and results[0].key == f"{event_id}/0"
    assert results[1].error == "HTTP 404"
    assert "kept_results" in claim.event.to_dict()


async def test_a_report_from_a_keeper_whose_lease_was_taken_changes_nothing(store: Store) -> None:
    stored = await store.store(keeping("t2", urls=("https://x.example/a",), destinations=()))
    [event_id] = stored.new_event_ids
    now = time.time()
    await store.claim_files("old", 10, 1, now)
    [taken], _ = await store.claim_files("new", 10, 60, now + 2)  # the old lease ran out
    assert taken.event_id == event_id
    await store.finish_file(kept(event_id, 0, "old"))
    found = await store.kept_file(event_id, 0)
    assert found is not None and found.state == KeptState.WAITING
    await store.finish_file(kept(event_id, 0, "new"))
    found = await store.kept_file(event_id, 0)
    assert found is not None and found.state == KeptState.KEPT and found.size == 3


async def test_a_failed_fetch_is_tried_again_when_due(store: Store) -> None:
    stored = await store.store(keeping("t3", urls=("https://x.example/a",), destinations=()))
    [event_id] = stored.new_event_ids
    now = time.time()
    await store.claim_files("k", 10, 60, now)
    retry = FileOutcome(
        event_id, 0, "k", KeptState.WAITING, next_attempt_at=now + 30, error="HTTP 503"
    )
    await store.finish_file(retry)
    files, due = await store.claim_files("k", 10, 60, now + 1)
    assert files == [] and due is not None and abs(due - (now + 30)) < 0.01
    [file], _ = await store.claim_files("k", 10, 60, now + 31)
    assert file.attempts == 1 and file.last_error == "HTTP 503"


async def test_events_without_keep_results_carry_none(store: Store) -> None:
    await store.sync_destinations(["sink"])
    await store.store(receipt("t4", destinations=("sink",)))
    [claim], _ = await store.claim({"sink": 4}, "w", 30, time.time())
    assert claim.event.kept_results == ()
    assert "kept_results" not in claim.event.to_dict()


async def test_retention_marks_stored_copies_pruned_for_the_keeper(store: Store) -> None:
    old = keeping("t5", urls=("https://x.example/a", "https://x.example/b"), destinations=())
    then = datetime.now(UTC) - timedelta(days=30)
    old = msgspec.structs.replace(
        old,
        received_at=then,
        events=tuple(
            msgspec.structs.replace(n, event=dataclasses.replace(n.event, received_at=then))
            for n in old.events
        ),
    )
    [event_id] = (await store.store(old)).new_event_ids
    now = time.time()
    await store.claim_files("k", 10, 60, now)
    # A waiting file keeps its event from being pruned.
    assert (await store.prune(datetime.now(UTC) - timedelta(days=7))).events == 0
    await store.finish_file(kept(event_id, 0, "k"))
    await store.finish_file(FileOutcome(event_id, 1, "k", KeptState.MISSING, error="gone"))
    pruned = await store.prune(datetime.now(UTC) - timedelta(days=7))
    assert pruned.events == 1 and pruned.files == 1
    assert await store.kept_files([event_id]) == {}
    [doomed], _ = await store.claim_files("k", 10, 60, time.time())
    assert doomed.state == KeptState.PRUNED and doomed.storage_key == f"{event_id}/0"
    await store.forget_files([(event_id, 0)])
    assert (await store.claim_files("k", 10, 60, time.time() + 120))[0] == []


async def test_a_confirmed_event_waits_for_its_files_and_files_for_confirmation(
    store: Store,
) -> None:
    await store.sync_destinations(["sink"])
    tracking = Tracking(600, 3600, confirm=True)
    for confirm_first in (True, False):
        fresh = keeping(
            f"t6-{confirm_first}", urls=("https://x.example/a",), destinations=("sink",)
        )
        fresh = msgspec.structs.replace(
            fresh,
            events=tuple(
                msgspec.structs.replace(n, terminal=True, tracking=tracking) for n in fresh.events
            ),
        )
        [event_id] = (await store.store(fresh)).new_event_ids
        assert await states(store, event_id) == {DeliveryState.CONFIRMING}
        now = time.time()
        [task], _ = await store.claim_tasks(["fotor"], "r", 10, 60, now)
        [_file], _ = await store.claim_files("k", 10, 60, now)
        if confirm_first:
            await store.finish_task(task, "r", state="done", confirmed=True)
            assert await states(store, event_id) == {DeliveryState.KEEPING}
            assert await store.finish_file(kept(event_id, 0, "k"))
        else:
            assert not await store.finish_file(kept(event_id, 0, "k"))
            assert await states(store, event_id) == {DeliveryState.CONFIRMING}
            await store.finish_task(task, "r", state="done", confirmed=True)
        assert await states(store, event_id) == {DeliveryState.PENDING}


async def test_keepers_claiming_at_once_never_take_the_same_file(store: Store) -> None:
    urls = tuple(f"https://x.example/{n}.png" for n in range(30))
    await store.store(keeping("t7", urls=urls, destinations=()))
    now = time.time()
    claimed = await asyncio.gather(
        *(store.claim_files(f"keeper-{n}", 12, 60, now) for n in range(3))
    )
    taken = [(f.event_id, f.position) for files, _ in claimed for f in files]
    assert len(taken) == len(set(taken)) == 30


async def test_the_batches_sweep_releases_a_batch_event_left_waiting_for_kept_files(
    store: Store,
) -> None:
    """A declaration completing a batch while a keeper records the last file of one of its
    tasks' events (PostgreSQL, two transactions each blind to the other) can leave the batch's
    event keeping with nothing left to wait for: the batches' sweep sends it."""
    await store.sync_destinations(["sink"])
    stored = await store.store(
        keeping("k1", urls=("https://cdn.example.com/a.png",), destinations=())
    )
    [member] = stored.new_event_ids
    [file], _ = await store.claim_files("keeper-1", 10, 60, time.time())
    [batch_event] = (await store.store(receipt("stands-in-for-the-batch-event"))).new_event_ids
    raced = (  # what the declaration wrote, not seeing the keeper's uncommitted change
        ("INSERT INTO batches (id, state, closed, created_at, updated_at, event_id)"
         " VALUES ('raced', 'completed', 1, 0, 0, ?)", (batch_event,)),
        ("INSERT INTO batch_tasks (batch_id, source, task_id, added_at, status, event_id)"
         " VALUES ('raced', 'fotor', 'k1', 0, 'completed', ?)", (member,)),
        ("INSERT INTO deliveries (id, event_id, destination, source, task_id, state,"
         " next_attempt_at, created_at, updated_at, message_id) VALUES ('dlv_raced',"
         " ?, 'sink', 'batches', 'raced', 'keeping', 0, 0, 0, NULL)", (batch_event,)),
        ("UPDATE kept_files SET state = 'kept' WHERE event_id = ?", (member,)),
    )  # fmt: skip
    for statement, values in raced:
        await store._run("racing", lambda tx, s=statement, v=values: tx.execute(s, v))  # type: ignore[attr-defined]
    assert await states(store, batch_event) == {DeliveryState.KEEPING}
    await store.sweep_batches(lambda event: ())
    assert await states(store, batch_event) == {DeliveryState.PENDING}
    assert file.event_id == member


async def test_a_stopping_keeper_gives_up_its_leases(store: Store) -> None:
    await store.store(keeping("r1", urls=("https://cdn.example.com/a.png",), destinations=()))
    now = time.time()
    [file], _ = await store.claim_files("keeper-1", 10, 600, now)
    assert (await store.claim_files("keeper-2", 10, 600, now))[0] == []  # leased
    await store.release_files("keeper-2")  # not its lease: nothing changes
    assert (await store.claim_files("keeper-2", 10, 600, now))[0] == []
    await store.release_files("keeper-1")
    [again], _ = await store.claim_files("keeper-2", 10, 600, now)
    assert (again.event_id, again.position) == (file.event_id, file.position)


async def test_a_try_that_does_not_count_leaves_the_files_attempts(store: Store) -> None:
    await store.store(keeping("c1", urls=("https://cdn.example.com/a.png",), destinations=()))
    now = time.time()
    [file], _ = await store.claim_files("keeper-1", 10, 600, now)
    outcome = FileOutcome(
        file.event_id, 0, "keeper-1", KeptState.WAITING, next_attempt_at=now, counted=False
    )
    await store.finish_file(outcome)
    [again], _ = await store.claim_files("keeper-1", 10, 600, now + 1)
    assert (again.state, again.attempts) == (KeptState.WAITING, 0)
