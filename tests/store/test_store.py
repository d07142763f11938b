"""Store behaviour: what every engine must do the same way."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import asyncpg
import msgspec
import pytest

from receiver.errors import StoreError
from receiver.store import EventQuery, Store, open_store
from receiver.store.migrations import migrations, pending
from receiver.store.postgres import PostgresStore
from receiver.store.sqlite import SQLiteStore

from .factories import receipt


async def test_store_and_list(store: Store) -> None:
    first = receipt("task-1")
    stored = await store.store(first)
    assert stored.event_ids == (first.events[0].event.id,)
    assert not stored.duplicate
    [event] = await store.list_events(EventQuery())
    assert event == first.events[0].event


async def test_same_task_and_status_is_a_duplicate(store: Store) -> None:
    original = await store.store(receipt("task-1", "completed"))
    again = await store.store(receipt("task-1", "completed"))
    assert again.duplicate
    assert again.event_ids == original.event_ids
    other_status = await store.store(receipt("task-1", "in_progress"))
    other_source = await store.store(receipt("task-1", "completed", source="fotor-eu"))
    assert not other_status.duplicate and not other_source.duplicate
    assert len(await store.list_events(EventQuery())) == 3


async def test_duplicates_inside_one_batch_store_one_event(store: Store) -> None:
    results = await asyncio.gather(*(store.store(receipt("task-x")) for _ in range(20)))
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.event_ids for r in results}) == 1
    assert len(await store.list_events(EventQuery())) == 1


async def test_a_receipt_with_new_and_known_jobs(store: Store) -> None:
    await store.store(receipt("job-a"))
    mixed = receipt("job-a", extra_tasks=(("job-b", "completed"),))
    stored = await store.store(mixed)
    assert not stored.duplicate
    assert stored.new_event_ids == (mixed.events[1].event.id,)
    assert len(stored.event_ids) == 2


async def test_duplicate_bodies_that_differ_are_kept(store: Store) -> None:
    first = await store.store(receipt("t", body=b'{"taskId":"t","status":1,"type":"upscale"}'))
    await store.store(receipt("t", body=b'{"taskId":"t","status":1,"type":"upscale"}'))
    await store.store(receipt("t", body=b'{"taskId":"t","status":1,"type":"upscale","x":1}'))
    detail = await store.event_detail(first.event_ids[0])
    assert detail is not None
    assert detail.duplicates == 2
    # the identical resend is counted, not kept; the one that differs is kept beside the event
    assert [r.duplicate for r in detail.receipts] == [False, True]
    assert detail.receipts[1].body.endswith(',"x":1}')


async def test_filters_and_newest_first(store: Store) -> None:
    for index in range(5):
        await store.store(receipt(f"task-{index}", "completed" if index % 2 else "failed"))
    events = await store.list_events(EventQuery())
    assert [e.task_id for e in events] == [f"task-{i}" for i in reversed(range(5))]
    completed = await store.list_events(EventQuery(status="completed"))
    assert {e.task_id for e in completed} == {"task-1", "task-3"}
    assert [e.task_id for e in await store.list_events(EventQuery(task_id="task-2"))] == ["task-2"]
    assert await store.list_events(EventQuery(source="cropphoto")) == []
    assert len(await store.list_events(EventQuery(limit=2))) == 2


async def test_url_token_key_is_made_once_and_kept(database_url: str) -> None:
    keys = []
    for _ in range(2):
        store = open_store(database_url)
        await store.open()
        keys.append(await store.url_token_key())
        keys.append(await store.url_token_key())
        await store.close()
    assert len(set(keys)) == 1
    assert len(keys[0]) >= 40


async def test_migrations_apply_once_and_refuse_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    for _ in range(2):
        store = SQLiteStore(str(path))
        await store.open()
        await store.close()
    with sqlite3.connect(path) as db:
        applied = db.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert applied == [(m.version,) for m in migrations("sqlite")]
        assert len(applied) >= 3
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')")
    with pytest.raises(StoreError, match="newer than this photohook knows"):
        await SQLiteStore(str(path)).open()


async def test_a_migration_applied_under_another_name_is_refused_not_skipped(
    database_url: str,
) -> None:
    """A database migrated by a development build whose migration numbers later changed: its
    last migration was recorded under another name, and this build's is not in its schema."""
    engine = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    latest = migrations(engine)[-1]
    store = open_store(database_url)
    await store.open()
    await store.close()
    await _execute(
        database_url,
        "UPDATE schema_migrations SET name = 'from_a_dev_build'"
        " WHERE version = (SELECT max(version) FROM schema_migrations)",
    )
    for migrate in (True, False):
        with pytest.raises(StoreError) as refused:
            await open_store(database_url).open(migrate=migrate)
        message = str(refused.value)
        assert f"{latest.version:04d}_from_a_dev_build" in message
        assert f"{latest.version:04d}_{latest.name}" in message


def test_a_recorded_migration_this_build_does_not_ship_is_refused() -> None:
    applied = {m.version: m.name for m in migrations("sqlite")}
    assert pending("sqlite", applied) == []
    with pytest.raises(StoreError, match="0000_dropped applied, but this photohook has no "):
        pending("sqlite", {0: "dropped", **applied})


async def _execute(database_url: str, sql: str) -> None:
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            db.execute(sql)
            db.commit()
        return
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def test_writes_fail_with_store_error_and_recover(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "ro.db"))
    await store.open()
    try:
        assert store._writer is not None
        await store._writer.call(
            lambda db: db.execute("PRAGMA query_only = 1")
        )  # a real refusal by SQLite
        with pytest.raises(StoreError):
            await store.store(receipt("t1"))
        with pytest.raises(StoreError):
            await store.check_writable()
        await store._writer.execute("PRAGMA query_only = 0")
        assert not (await store.store(receipt("t1"))).duplicate
        await store.check_writable()
    finally:
        await store.close()


def test_the_destination_error_migration_finds_each_latest_failure() -> None:
    db = sqlite3.connect(":memory:")
    [later] = [m for m in migrations("sqlite") if m.name == "destination_error"]
    for migration in migrations("sqlite"):
        if migration.version < later.version:
            for statement in migration.statements():
                db.execute(statement)
    db.executemany(
        "INSERT INTO destinations (name, state, updated_at) VALUES (?, 'active', 0)",
        [("app",), ("calm",)],
    )
    db.executemany(
        "INSERT INTO deliveries (id, event_id, destination, source, task_id, state,"
        " next_attempt_at, created_at, updated_at)"
        " VALUES (?, ?, ?, 'fotor', ?, 'delivered', 0, 0, 0)",
        [("d1", "e1", "app", "t1"), ("d2", "e2", "app", "t2"), ("d3", "e3", "calm", "t3")],
    )
    db.executemany(
        "INSERT INTO attempts (id, delivery_id, number, started_at, duration_ms, ok, status_code,"
        " error) VALUES (?, ?, 1, 0, 1, ?, ?, ?)",
        [
            (1, "d2", 0, None, "ConnectError"),
            (2, "d1", 0, 502, None),
            (3, "d1", 1, 200, None),
            (4, "d3", 1, 200, None),
        ],
    )
    for statement in later.statements():
        db.execute(statement)
    found = dict(db.execute("SELECT name, last_error FROM destinations"))
    assert found == {"app": "HTTP 502", "calm": None}


def test_database_urls() -> None:
    assert isinstance(open_store("sqlite:///rel.db"), SQLiteStore)
    assert open_store("sqlite:////abs/x.db").path == "/abs/x.db"  # type: ignore[attr-defined]
    assert isinstance(open_store("postgresql://u@db.internal:5432/photohook"), PostgresStore)
    assert isinstance(open_store("postgres://u@db.internal/photohook"), PostgresStore)
    for bad in ("sqlite://rel.db", "sqlite:///:memory:", "mysql://x", "nonsense", "postgresql://"):
        with pytest.raises(Exception, match="database URL"):
            open_store(bad)


async def test_callbacks_track_their_task_until_a_final_one(store: Store) -> None:
    from receiver.store import Tracking

    tracking = Tracking(600, 3600)
    await store.store(receipt("t1", "in_progress", tracking=tracking))
    [task] = await store.list_tasks()
    assert (task.task_id, task.state, task.event_id) == ("t1", "tracked", None)
    await store.store(receipt("t1", "completed", terminal=True, tracking=tracking))
    [task] = await store.list_tasks()
    assert task.state == "done"


@pytest.mark.parametrize("final", ["completed", "failed"])
async def test_a_late_callback_never_reopens_a_finished_task(store: Store, final: str) -> None:
    from receiver.store import Tracking

    tracking = Tracking(0, 1)
    # t1 ends before its progress callback arrives; t2 ends between two of them.
    await store.store(receipt("t1", final, terminal=True, tracking=tracking))
    await store.store(receipt("t1", "in_progress", tracking=tracking))
    await store.store(receipt("t2", "pending", rank=1, tracking=tracking))
    await store.store(receipt("t2", final, terminal=True, tracking=tracking))
    # t3's two callbacks are stored together, the final one first.
    both = receipt(
        "t3", final, terminal=True, tracking=tracking, extra_tasks=(("t3", "in_progress"),)
    )
    final_event, progress = both.events
    await store.store(
        msgspec.structs.replace(
            both, events=(final_event, msgspec.structs.replace(progress, terminal=False))
        )
    )
    before = await store.list_tasks()
    await store.store(receipt("t2", "processing", rank=2, tracking=tracking))
    after = await store.list_tasks()
    assert [(task.task_id, task.state) for task in after] == [("t2", "done")]  # nor t1, t3
    assert after == before  # t2 not touched
    claimed, next_due = await store.claim_tasks(["fotor"], "w", 10, 60, time.time() + 3600)
    assert (claimed, next_due) == ([], None)


async def test_a_check_never_marks_a_task_with_a_final_event_lost(store: Store) -> None:
    from receiver.store import Tracking

    tracking = Tracking(0, 1)
    now = time.time()
    for task_id in ("t1", "t2"):
        await store.track_task("fotor", task_id, None, tracking, now)
    # Stored while the task was tracked, without ending it: as a database written before late
    # callbacks were kept from reopening tasks holds them.
    await store.store(receipt("t1", "completed", terminal=True))
    claimed, _ = await store.claim_tasks(["fotor"], "w", 10, 60, now + 2)
    assert sorted(task.task_id for task in claimed) == ["t1", "t2"]
    for task in claimed:
        await store.finish_task(task, "w", state="lost", error="no result within reconcile_for")
    assert {task.task_id: task.state for task in await store.list_tasks()} == {
        "t1": "done",
        "t2": "lost",
    }


async def test_the_task_summary_has_each_sources_latest_error(store: Store) -> None:
    from receiver.store import Tracking

    tracking = Tracking(0, 3600)
    now = time.time()
    for source, task_id in [("fotor", "t1"), ("fotor", "t2"), ("fotor", "t3"), ("crop", "c1")]:
        await store.track_task(source, task_id, None, tracking, now)
    claimed, _ = await store.claim_tasks(["fotor", "crop"], "w", 10, 60, now + 1)
    by_id = {task.task_id: task for task in claimed}
    # Recorded in this order, so each is updated after the one before.
    await store.finish_task(by_id["t2"], "w", state="tracked", error="older")
    await store.finish_task(by_id["c1"], "w", state="tracked", error="crop's")
    await store.finish_task(by_id["t1"], "w", state="tracked", error="newest")
    await store.finish_task(by_id["t3"], "w", state="tracked")  # later, and without an error

    summary = await store.task_summary()
    assert summary["fotor"] == {"counts": {"tracked": 3}, "last_error": "newest"}
    assert summary["crop"] == {"counts": {"tracked": 1}, "last_error": "crop's"}
