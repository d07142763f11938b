"""Queries must grow with the database at most linearly, and those that run on their own (a
scrape, the reconciler's claim) not with its history at all.

One that reads a table once per row of another (a correlated scan) is quick in a test and takes
hours on a database of a million events, holding SQLite's write lock all the while. SQLite's
virtual machine steps are counted, not timed, so the check is exact on a busy machine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from receiver.events import Event
from receiver.store import EventQuery, activity, outbox, pruning, queries, rejections, sqlite, tasks
from receiver.store.migrations import migrations
from receiver.store.sqlite_writer import _ThreadTx

OLD = "2026-01-01T00:00:00.000000Z"
CUTOFF = "2027-01-01T00:00:00.000000Z"


def _database(rows: int) -> sqlite3.Connection:
    """``rows`` old requests, the later half still with their events (the earlier half's were
    pruned) and a delivery each, every other one with a failed attempt long ago; and ``rows``
    tasks of one source, every other one with an error, one in a hundred still tracked; and
    ``rows`` old rejected requests of two sources."""
    db = sqlite3.connect(":memory:")
    for migration in migrations("sqlite"):
        for statement in migration.statements():
            db.execute(statement)
    db.executemany(
        "INSERT INTO receipts (id, source, via, received_at, headers, body, body_sha256,"
        " event_ids, duplicate) VALUES (?, 'fotor', 'callback', ?, '[]', x'', x'', '[]', 0)",
        [(f"rcv_{i:06d}", OLD) for i in range(rows)],
    )
    db.executemany(
        "INSERT INTO events (id, source, kind, type, task_id, task_type, status, labels,"
        " result_urls, flagged, received_at, via, receipt_id) VALUES"
        " (?, 'fotor', 'fotor', 't', ?, 'upscale', 'completed', '[]', '[]', 0, ?, 'callback', ?)",
        [(f"evt_{i:06d}", f"task-{i}", OLD, f"rcv_{i:06d}") for i in range(rows // 2, rows)],
    )
    db.execute("INSERT INTO destinations (name, state, updated_at) VALUES ('app', 'active', 0)")
    db.executemany(
        "INSERT INTO deliveries (id, event_id, destination, source, task_id, state,"
        " next_attempt_at, created_at, updated_at) VALUES (?, ?, 'app', 'fotor', ?, ?, 0, 0, 0)",
        [
            (f"dlv_{i:06d}", f"evt_{i:06d}", f"task-{i}", "dead" if i % 100 == 0 else "delivered")
            for i in range(rows // 2, rows)
        ],
    )
    db.executemany(
        "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, ok, status_code)"
        " VALUES (?, 1, 0, 1, ?, ?)",
        [(f"dlv_{i:06d}", i % 2, 200 if i % 2 else 503) for i in range(rows // 2, rows)],
    )
    db.executemany(
        "INSERT INTO tasks (source, task_id, state, created_at, last_seen_at, expires_at,"
        " next_check_at, last_error, updated_at) VALUES ('fotor', ?, ?, 0, 0, 0, 0, ?, ?)",
        [
            (f"task-{i}", "done" if i % 100 else "tracked", "HTTP 500" if i % 2 else None, i)
            for i in range(rows)
        ],
    )
    db.executemany(
        "INSERT INTO rejected (id, source, received_at, headers, body, status, code, message)"
        " VALUES (?, ?, ?, '[]', x'', 422, 'invalid_payload', 'status must be one of 0, 1, 2')",
        [(f"rej_{i:06d}", "fotor" if i % 2 else "crop", OLD) for i in range(rows)],
    )
    return db


def _steps(db: sqlite3.Connection, sql: str, parameters: Sequence[object], every: int = 100) -> int:
    """SQLite's virtual machine steps that running ``sql`` takes, counted once per ``every``."""
    return _steps_of(db, lambda: db.execute(sql, parameters).fetchall(), every)


def _steps_of(db: sqlite3.Connection, work: Callable[[], object], every: int) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    db.set_progress_handler(count, every)
    work()
    db.set_progress_handler(None, 0)
    return steps


QUERIES = {
    "prunable events": (pruning._PRUNABLE_EVENTS, [CUTOFF]),
    "a batch of prunable events": (pruning._BATCH_EVENTS, ["", CUTOFF, 10**6]),
    "a batch of prunable requests": (pruning._BATCH_RECEIPTS, ["", CUTOFF, 10**6]),
    "prune counts": (pruning._PRUNE_COUNTS, [CUTOFF] * 5 + [1.8e9, CUTOFF, 1.8e9, CUTOFF]),
    "a batch of rejected requests to prune": (pruning._DELETE_REJECTED, [CUTOFF, 10**6]),
    "a source's kept rejected requests": (rejections._KEPT, ["fotor", 10**6]),
    "tasks' last errors": (tasks.LAST_ERRORS, []),
    "destination statuses": (outbox.DESTINATION_STATUSES, [1.8e9 - 3600]),
}
#: The dashboard's overview, on every view: the last day of callbacks and of attempts.
WINDOWED = {
    "the overview's callbacks": (activity.CALLBACKS, [16, "2027-01-01T00:00:00.000000Z"]),
    "the overview's attempts": (
        activity.ATTEMPTS.format(
            bucket=sqlite.DIALECT.integer_part.format(value="(a.started_at - ?) / ?")
        ),
        [1.8e9 - 86400, 60.0, 1.8e9 - 86400],
    ),
}


@pytest.mark.parametrize("name", QUERIES)
def test_the_work_grows_linearly_with_the_rows(name: str) -> None:
    sql, parameters = QUERIES[name]
    small, large = (_steps(_database(rows), sql, parameters) for rows in (1000, 2000))
    assert small > 0
    assert large / small < 2.5, (small, large)


def test_destination_statuses_read_the_last_hour_not_the_history() -> None:
    sql, parameters = QUERIES["destination statuses"]
    small, large = (_steps(_database(rows), sql, parameters, every=1) for rows in (1000, 2000))
    # The dead deliveries it counts grow too, but they are a hundredth of the history.
    assert large / small < 1.3, (small, large)


@pytest.mark.parametrize("name", WINDOWED)
def test_the_overview_reads_its_window_not_the_history(name: str) -> None:
    sql, parameters = WINDOWED[name]
    small, large = (_steps(_database(rows), sql, parameters, every=1) for rows in (1000, 2000))
    assert large / small < 1.1, (small, large)


def test_the_overview_counts_what_is_in_its_window() -> None:
    """The same queries over a window that holds the history read it all: the index bounds
    them, not an accident of the data."""
    db = _database(1000)
    sql, _ = WINDOWED["the overview's callbacks"]
    assert db.execute(sql, [16, OLD]).fetchall() == [("fotor", OLD[:16], 1000)]
    sql, _ = WINDOWED["the overview's attempts"]
    found = db.execute(sql, [0.0, 60.0, 0.0]).fetchall()
    assert sorted(found) == [("app", "delivered", 0, 250), ("app", "failed", 0, 250)]


def test_listing_events_with_a_dead_delivery_grows_linearly() -> None:
    def listing(rows: int) -> int:
        db = _database(rows)
        db.execute("UPDATE receipts SET body = x'7b7d'")  # {}: each event's payload
        query = EventQuery(dead_delivery=True, limit=rows)
        work = queries.list_events(_ThreadTx(db, sqlite.DIALECT), query)
        found: list[Event] = []
        steps = _steps_of(db, lambda: found.extend(asyncio.run(work)), every=1)
        assert len(found) == rows // 200  # a dead delivery in a hundred, for half of them
        return steps

    small, large = listing(1000), listing(2000)
    assert large / small < 2.5, (small, large)


def test_claiming_tasks_reads_the_tracked_ones_not_the_finished() -> None:
    def claim(rows: int) -> int:
        db = _database(rows)
        tx = _ThreadTx(db, sqlite.DIALECT)
        work = tasks.claim(tx, ["fotor"], "w", 10, 60, 1.0)
        return _steps_of(db, lambda: asyncio.run(work), every=1)

    small, large = claim(1000), claim(2000)
    # The tracked tasks go from 10 to 20, the finished ones from 990 to 1,980: only the first
    # may show.
    assert large / small < 1.5, (small, large)


def test_a_pruning_run_does_not_look_again_at_what_it_keeps() -> None:
    """Kept events (and their requests) older than the rest: each batch after the first starts
    past them."""

    def second_batch(kept: int) -> int:
        db = sqlite3.connect(":memory:")
        for migration in migrations("sqlite"):
            for statement in migration.statements():
                db.execute(statement)
        # Old requests and events, the first ``kept`` held for a paused destination.
        times = [f"2026-01-01T00:00:{i // 1000:02d}.{i % 1000:06d}Z" for i in range(kept + 100)]
        db.executemany(
            "INSERT INTO receipts (id, source, via, received_at, headers, body, body_sha256,"
            " event_ids, duplicate) VALUES (?, 'fotor', 'callback', ?, '[]', x'', x'', '[]', 0)",
            [(f"rcv_{i:06d}", at) for i, at in enumerate(times)],
        )
        db.executemany(
            "INSERT INTO events (id, source, kind, type, task_id, task_type, status, labels,"
            " result_urls, flagged, received_at, via, receipt_id) VALUES (?, 'fotor', 'fotor',"
            " 't', ?, 'upscale', 'completed', '[]', '[]', 0, ?, 'callback', ?)",
            [(f"evt_{i:06d}", f"task-{i}", at, f"rcv_{i:06d}") for i, at in enumerate(times)],
        )
        db.executemany(
            "INSERT INTO deliveries (id, event_id, destination, source, task_id, state,"
            " next_attempt_at, created_at, updated_at) VALUES (?, ?, 'app', 'fotor', ?, 'held',"
            " 0, 0, 0)",
            [(f"dlv_{i:06d}", f"evt_{i:06d}", f"task-{i}") for i in range(kept)],
        )
        tx = _ThreadTx(db, sqlite.DIALECT)
        cutoff = datetime(2027, 1, 1, tzinfo=UTC)
        first, since = asyncio.run(pruning.prune_batch(tx, cutoff, 10))
        assert first.events == first.receipts == 10
        work = pruning.prune_batch(tx, cutoff, 10, since)
        return _steps_of(db, lambda: asyncio.run(work), every=1)

    small, large = second_batch(1000), second_batch(2000)
    assert large / small < 1.2, (small, large)


def test_the_count_sees_a_table_read_once_per_row() -> None:
    sql = "SELECT id FROM receipts r WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.kind = r.id)"
    small, large = (_steps(_database(rows), sql, []) for rows in (1000, 2000))
    assert large / small > 3.5, (small, large)
