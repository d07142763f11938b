"""The embedded store: SQLite in WAL mode with ``synchronous=FULL``, through aiosqlite.

One connection writes, through the group committer; another reads, so that listing never waits
for a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from ..errors import StoreError
from ..events import Event, format_time
from ..ids import new_id
from ..tokens import generate_key
from . import rows
from .batch import Key, TaskChange, plan
from .groupcommit import GroupCommit
from .migrations import migrations
from .records import (
    AttemptRecord,
    Claim,
    Delivery,
    DeliveryQuery,
    DestinationStatus,
    EventDetail,
    EventQuery,
    Outcome,
    Pruned,
    Receipt,
    Stored,
    Task,
    Tracking,
)

logger = logging.getLogger("photohook.store")

_PARAMETERS_PER_QUERY = 500

# A delivery waits while an earlier event of its task waits for the same destination.
_NOT_BLOCKED = """
    NOT EXISTS (
        SELECT 1 FROM deliveries p
        WHERE p.destination = d.destination AND p.task_id = d.task_id AND p.source = d.source
          AND p.event_id < d.event_id AND p.state IN ('pending', 'retrying', 'held', 'confirming')
    )
"""


class SQLiteStore:
    """A :class:`~receiver.store.Store` in one SQLite file."""

    def __init__(self, path: str, *, max_batch: int = 256) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._commits: GroupCommit[Receipt, Stored] = GroupCommit(
            self._write_batch, max_batch=max_batch
        )
        self._outcomes: GroupCommit[Outcome, None] = GroupCommit(
            self._write_outcomes, max_batch=max_batch
        )

    async def open(self) -> None:
        try:
            self._writer = await _connect(self.path)
            await self._writer.execute("PRAGMA journal_mode = WAL")
            await self._migrate()
            self._reader = await _connect(self.path)
            await self._reader.execute("PRAGMA query_only = 1")
        except BaseException as exc:
            await self._close_connections()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open the SQLite database {self.path!r}: {exc}") from exc
            raise
        self._commits.start()
        self._outcomes.start()

    async def close(self) -> None:
        await self._commits.stop()
        await self._outcomes.stop()
        await self._close_connections()

    async def _close_connections(self) -> None:
        for connection in (self._reader, self._writer):
            if connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    await connection.close()
        self._reader = self._writer = None

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        db = self._writer
        if db is None:
            raise StoreError("the store is not open")
        async with self._write_lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        await db.execute("ROLLBACK")
                raise

    async def _migrate(self) -> None:
        assert self._writer is not None
        await self._writer.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        known = migrations("sqlite")
        async with self._transaction() as db:
            cursor = await db.execute("SELECT version FROM schema_migrations")
            applied = {row[0] for row in await cursor.fetchall()}
            newest = max((m.version for m in known), default=0)
            if applied and max(applied) > newest:
                raise StoreError(
                    f"the database schema is at version {max(applied)}, newer than this "
                    f"photohook knows ({newest}); upgrade photohook"
                )
            for migration in known:
                if migration.version in applied:
                    continue
                for statement in migration.statements():
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, format_time(datetime.now(UTC))),
                )
                logger.info("applied migration %04d_%s", migration.version, migration.name)

    async def store(self, receipt: Receipt) -> Stored:
        try:
            return await self._commits.submit(receipt)
        except sqlite3.Error as exc:
            raise StoreError(f"could not store the callback: {exc}") from exc

    async def _write_batch(self, receipts: Sequence[Receipt]) -> list[Stored]:
        now = time.time()
        async with self._transaction() as db:
            task_ids = {new.event.task_id for receipt in receipts for new in receipt.events}
            known, ranks = await _existing(db, task_ids)
            batch = plan(receipts, known, ranks, now)
            if batch.receipts:
                await db.executemany(
                    "INSERT INTO receipts (id, source, via, received_at, peer, client, headers,"
                    " body, body_sha256, event_ids, duplicate)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    batch.receipts,
                )
            if batch.events:
                await db.executemany(
                    "INSERT INTO events (id, source, kind, type, task_id, task_type, status,"
                    " business_id, labels, result_urls, flagged, received_at, via, receipt_id,"
                    " status_rank) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    batch.events,
                )
            if batch.deliveries:
                await db.executemany(_INSERT_DELIVERY, batch.deliveries)
            for change in batch.tasks:
                await _apply_task_change(db, change, now)
            if batch.duplicates:
                await db.executemany(
                    "UPDATE events SET duplicates = duplicates + 1 WHERE id = ?", batch.duplicates
                )
        return batch.results

    async def check_writable(self) -> None:
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO meta (key, value) VALUES ('ready_probe', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (format_time(datetime.now(UTC)),),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"the database is not writable: {exc}") from exc

    async def url_token_key(self) -> str:
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('url_token_key', ?)",
                    (generate_key(),),
                )
                cursor = await db.execute("SELECT value FROM meta WHERE key = 'url_token_key'")
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the URL token key: {exc}") from exc
        assert row is not None
        return str(row[0])

    async def list_events(self, query: EventQuery) -> list[Event]:
        conditions, parameters = _event_filters(query)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = (
            f"SELECT {rows.EVENT_COLUMNS} FROM events e"  # noqa: S608
            f" JOIN receipts r ON r.id = e.receipt_id {where} ORDER BY e.id DESC LIMIT ?"
        )
        return [rows.event(row) for row in await self._read(sql, [*parameters, query.limit])]

    async def get_event(self, event_id: str) -> Event | None:
        found = await self._read(
            f"SELECT {rows.EVENT_COLUMNS} FROM events e"  # noqa: S608
            " JOIN receipts r ON r.id = e.receipt_id WHERE e.id = ?",
            [event_id],
        )
        return next((rows.event(row) for row in found), None)

    async def sync_destinations(self, names: Iterable[str]) -> None:
        now = time.time()
        try:
            async with self._transaction() as db:
                await db.executemany(
                    "INSERT OR IGNORE INTO destinations (name, state, updated_at)"
                    " VALUES (?, 'active', ?)",
                    [(name, now) for name in names],
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record the destinations: {exc}") from exc

    async def claim(
        self, limits: Mapping[str, int], worker_id: str, lease_seconds: float, now: float
    ) -> tuple[list[Claim], float | None]:
        try:
            async with self._transaction() as db:
                cursor = await db.execute("SELECT name, state FROM destinations")
                states = {str(row[0]): str(row[1]) for row in await cursor.fetchall()}
                if any(state != "active" for state in states.values()):
                    await _hold_inactive(db, now)
                active = [n for n, state in states.items() if state == "active" and limits.get(n)]
                claimed: list[str] = []
                for destination in active:
                    cursor = await db.execute(
                        "SELECT d.id FROM deliveries d"  # noqa: S608
                        " WHERE d.destination = ? AND d.state IN ('pending', 'retrying')"
                        " AND d.next_attempt_at <= ?"
                        " AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= ?)"
                        f" AND {_NOT_BLOCKED} ORDER BY d.next_attempt_at, d.event_id LIMIT ?",
                        (destination, now, now, limits[destination]),
                    )
                    ids = [delivery_id for (delivery_id,) in await cursor.fetchall()]
                    if ids:
                        await db.execute(
                            "UPDATE deliveries SET lease_owner = ?, lease_expires_at = ?"  # noqa: S608
                            f" WHERE id IN ({', '.join('?' * len(ids))})",
                            (worker_id, now + lease_seconds, *ids),
                        )
                        claimed.extend(ids)
                next_due = None
                if active:
                    cursor = await db.execute(
                        "SELECT MIN(MAX(d.next_attempt_at, COALESCE(d.lease_expires_at, 0)))"  # noqa: S608
                        " FROM deliveries d WHERE d.state IN ('pending', 'retrying') AND"
                        f" d.destination IN ({', '.join('?' * len(active))}) AND {_NOT_BLOCKED}",
                        active,
                    )
                    next_due = (await cursor.fetchone() or (None,))[0]
                claims = await _claims(db, claimed)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot claim deliveries: {exc}") from exc
        return claims, next_due

    async def finish(self, outcome: Outcome) -> None:
        try:
            await self._outcomes.submit(outcome)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record a delivery attempt: {exc}") from exc

    async def _write_outcomes(self, outcomes: Sequence[Outcome]) -> list[None]:
        now = time.time()
        async with self._transaction() as db:
            # Each delivery's attempt is numbered before the update below counts it.
            await db.executemany(
                "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, ok,"
                " status_code, error, response_headers, response_body)"
                " SELECT ?, attempts + 1, ?, ?, ?, ?, ?, ?, ? FROM deliveries WHERE id = ?",
                [
                    (
                        o.delivery_id,
                        o.attempt.started_at,
                        o.attempt.duration_ms,
                        int(o.attempt.ok),
                        o.attempt.status_code,
                        o.attempt.error,
                        o.attempt.response_headers.decode() if o.attempt.response_headers else None,
                        o.attempt.response_body,
                        o.delivery_id,
                    )
                    for o in outcomes
                ],
            )
            await db.executemany(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1, tries = tries + 1,"
                " next_attempt_at = COALESCE(?, next_attempt_at), last_status = ?,"
                " last_error = ?, updated_at = ?, lease_owner = NULL, lease_expires_at = NULL"
                " WHERE id = ? AND lease_owner = ?",
                [
                    (
                        o.state,
                        o.next_attempt_at,
                        o.attempt.status_code,
                        o.attempt.error,
                        now,
                        o.delivery_id,
                        o.worker_id,
                    )
                    for o in outcomes
                ],
            )
            for outcome in outcomes:
                if outcome.disable_destination is not None:
                    await _set_destination_state(
                        db,
                        await _destination_of(db, outcome.delivery_id),
                        "disabled",
                        outcome.disable_destination,
                        now,
                    )
        return [None] * len(outcomes)

    async def add_deliveries(self, event_id: str, destinations: Iterable[str]) -> list[str]:
        now = time.time()
        try:
            async with self._transaction() as db:
                cursor = await db.execute(
                    "SELECT source, task_id FROM events WHERE id = ?", (event_id,)
                )
                row = await cursor.fetchone()
                if row is None:
                    return []
                delivery_rows = [
                    (new_id("dlv"), event_id, name, row[0], row[1], "pending", now, None, now, now)
                    for name in destinations
                ]
                await db.executemany(_INSERT_DELIVERY, delivery_rows)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot add deliveries: {exc}") from exc
        return [delivery_row[0] for delivery_row in delivery_rows]

    async def list_deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        conditions, parameters = _delivery_filters(query)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        order = "d.state = 'dead' DESC, d.id DESC" if query.dead_first else "d.id DESC"
        found = await self._read(
            f"SELECT {rows.DELIVERY_COLUMNS} FROM deliveries d {where}"  # noqa: S608
            f" ORDER BY {order} LIMIT ?",
            [*parameters, query.limit],
        )
        return [rows.delivery(row) for row in found]

    async def event_detail(self, event_id: str) -> EventDetail | None:
        event = await self.get_event(event_id)
        if event is None:
            return None
        found = await self._read(
            f"SELECT {rows.RECEIPT_COLUMNS} FROM receipts"  # noqa: S608
            " WHERE id = (SELECT receipt_id FROM events WHERE id = ?)"
            f" UNION ALL SELECT {rows.RECEIPT_COLUMNS} FROM receipts WHERE duplicate = 1"
            " AND EXISTS (SELECT 1 FROM json_each(receipts.event_ids) WHERE value = ?)"
            " ORDER BY received_at",
            [event_id, event_id],
        )
        [(duplicates,)] = await self._read("SELECT duplicates FROM events WHERE id = ?", [event_id])
        deliveries = await self.list_deliveries(DeliveryQuery(event_id=event_id, limit=1000))
        attempts = await self.attempts([d.id for d in deliveries])
        return EventDetail(
            event=event,
            duplicates=duplicates,
            receipts=[rows.receipt(row) for row in found],
            deliveries=[(d, attempts.get(d.id, [])) for d in reversed(deliveries)],
        )

    async def attempts(self, delivery_ids: Sequence[str]) -> dict[str, list[AttemptRecord]]:
        found: dict[str, list[AttemptRecord]] = {}
        for start in range(0, len(delivery_ids), _PARAMETERS_PER_QUERY):
            chunk = list(delivery_ids[start : start + _PARAMETERS_PER_QUERY])
            for row in await self._read(
                f"SELECT delivery_id, {rows.ATTEMPT_COLUMNS} FROM attempts"  # noqa: S608
                f" WHERE delivery_id IN ({', '.join('?' * len(chunk))}) ORDER BY number",
                chunk,
            ):
                found.setdefault(row[0], []).append(rows.attempt(row[1:]))
        return found

    async def prune(self, cutoff: datetime, *, batch: int = 500, dry_run: bool = False) -> Pruned:
        text = format_time(cutoff)
        if dry_run:
            [counts] = await self._read(_PRUNE_COUNTS, [text] * 5)
            return Pruned(*counts)
        total = Pruned()
        while True:
            try:
                async with self._transaction() as db:
                    done = await _prune_batch(db, text, batch)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot prune: {exc}") from exc
            total += done
            if done == Pruned():
                return total
            await asyncio.sleep(0.01)  # let waiting commits in between batches

    async def requeue(
        self,
        *,
        delivery_id: str | None = None,
        destination: str | None = None,
        event_id: str | None = None,
    ) -> int:
        conditions, parameters = ["state = 'dead'"], []
        for column, value in (
            ("id", delivery_id),
            ("destination", destination),
            ("event_id", event_id),
        ):
            if value is not None:
                conditions.append(f"{column} = ?")
                parameters.append(value)
        now = time.time()
        try:
            async with self._transaction() as db:
                cursor = await db.execute(
                    "UPDATE deliveries SET state = 'pending', tries = 0, next_attempt_at = ?,"  # noqa: S608
                    f" updated_at = ? WHERE {' AND '.join(conditions)}",
                    (now, now, *parameters),
                )
                return cursor.rowcount
        except sqlite3.Error as exc:
            raise StoreError(f"cannot requeue deliveries: {exc}") from exc

    async def set_destination_state(self, name: str, state: str, reason: str | None) -> bool:
        try:
            async with self._transaction() as db:
                return await _set_destination_state(db, name, state, reason, time.time())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot change the destination: {exc}") from exc

    async def track_task(
        self, source: str, task_id: str, business_id: str | None, tracking: Tracking, now: float
    ) -> Task:
        try:
            async with self._transaction() as db:
                cursor = await db.execute(
                    "SELECT 1 FROM events WHERE source = ? AND task_id = ?"
                    " AND status IN ('completed', 'failed')",
                    (source, task_id),
                )
                finished = await cursor.fetchone() is not None
                await db.execute(
                    "INSERT INTO tasks (source, task_id, business_id, state, created_at,"
                    " last_seen_at, expires_at, next_check_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, task_id) DO NOTHING",
                    (
                        source,
                        task_id,
                        business_id,
                        "done" if finished else "tracked",
                        now,
                        now,
                        now + tracking.lasting,
                        now + tracking.after,
                        now,
                    ),
                )
                cursor = await db.execute(
                    f"SELECT {rows.TASK_COLUMNS} FROM tasks"  # noqa: S608
                    " WHERE source = ? AND task_id = ?",
                    (source, task_id),
                )
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot track the task: {exc}") from exc
        assert row is not None
        return rows.task(row)

    async def claim_tasks(
        self, sources: Collection[str], worker_id: str, limit: int, lease: float, now: float
    ) -> tuple[list[Task], float | None]:
        if not sources:
            return [], None
        marks = ", ".join("?" * len(sources))
        due = (
            f"state IN ('tracked', 'confirming') AND source IN ({marks})"
            " AND (lease_expires_at IS NULL OR lease_expires_at <= ?)"
        )
        try:
            async with self._transaction() as db:
                cursor = await db.execute(
                    f"SELECT {rows.TASK_COLUMNS} FROM tasks WHERE {due}"  # noqa: S608
                    " AND next_check_at <= ? ORDER BY next_check_at LIMIT ?",
                    (*sources, now, now, limit),
                )
                tasks = [rows.task(row) for row in await cursor.fetchall()]
                await db.executemany(
                    "UPDATE tasks SET lease_owner = ?, lease_expires_at = ?"
                    " WHERE source = ? AND task_id = ?",
                    [(worker_id, now + lease, t.source, t.task_id) for t in tasks],
                )
                cursor = await db.execute(
                    f"SELECT MIN(next_check_at) FROM tasks WHERE {due}",  # noqa: S608
                    (*sources, now + lease),
                )
                next_due = (await cursor.fetchone() or (None,))[0]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot claim tasks: {exc}") from exc
        return tasks, next_due

    async def finish_task(
        self,
        task: Task,
        worker_id: str,
        *,
        state: str,
        next_check_at: float | None = None,
        error: str | None = None,
        confirmed: bool | None = None,
    ) -> None:
        now = time.time()
        try:
            async with self._transaction() as db:
                # The state changes only if nothing else changed it meanwhile (a callback that
                # completed the task while it was being checked must not be undone).
                cursor = await db.execute(
                    "UPDATE tasks SET state = CASE WHEN state = ? THEN ? ELSE state END,"
                    " next_check_at = COALESCE(?, next_check_at), checks = checks + 1,"
                    " last_error = ?, updated_at = ?, lease_owner = NULL, lease_expires_at = NULL"
                    " WHERE source = ? AND task_id = ? AND lease_owner = ?",
                    (
                        task.state,
                        state,
                        next_check_at,
                        error,
                        now,
                        task.source,
                        task.task_id,
                        worker_id,
                    ),
                )
                if confirmed is not None and cursor.rowcount and task.event_id is not None:
                    await db.execute(
                        "UPDATE deliveries SET state = ?, next_attempt_at = ?, updated_at = ?,"
                        " last_error = ? WHERE event_id = ? AND state = 'confirming'",
                        (
                            "pending" if confirmed else "unconfirmed",
                            now,
                            now,
                            None if confirmed else error,
                            task.event_id,
                        ),
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record the task: {exc}") from exc

    async def list_tasks(self, state: str | None = None, limit: int = 100) -> list[Task]:
        where, parameters = ("WHERE state = ?", [state]) if state else ("", [])
        found = await self._read(
            f"SELECT {rows.TASK_COLUMNS} FROM tasks {where}"  # noqa: S608
            " ORDER BY updated_at DESC LIMIT ?",
            [*parameters, limit],
        )
        return [rows.task(row) for row in found]

    async def task_summary(self) -> dict[str, dict[str, Any]]:
        summary: dict[str, dict[str, Any]] = {}
        for source, state, count in await self._read(
            "SELECT source, state, COUNT(*) FROM tasks GROUP BY source, state", []
        ):
            summary.setdefault(source, {"counts": {}, "last_error": None})["counts"][state] = count
        for source, error in await self._read(
            "SELECT source, last_error FROM tasks t WHERE updated_at = (SELECT MAX(updated_at)"
            " FROM tasks WHERE source = t.source AND last_error IS NOT NULL)",
            [],
        ):
            summary.setdefault(source, {"counts": {}, "last_error": None})["last_error"] = error
        return summary

    async def get_meta(self, key: str) -> str | None:
        found = await self._read("SELECT value FROM meta WHERE key = ?", [key])
        return next((str(row[0]) for row in found), None)

    async def set_meta(self, key: str, value: str | None) -> None:
        try:
            async with self._transaction() as db:
                if value is None:
                    await db.execute("DELETE FROM meta WHERE key = ?", (key,))
                else:
                    await db.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write {key}: {exc}") from exc

    async def destination_statuses(self, now: float) -> list[DestinationStatus]:
        found = await self._read(
            """
            SELECT t.name, t.state, t.reason,
                (SELECT COUNT(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                 WHERE d.destination = t.name AND a.started_at >= ?),
                (SELECT COUNT(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                 WHERE d.destination = t.name AND a.started_at >= ? AND a.ok),
                (SELECT COALESCE(a.error, 'HTTP ' || a.status_code) FROM attempts a
                 JOIN deliveries d ON d.id = a.delivery_id
                 WHERE d.destination = t.name AND NOT a.ok ORDER BY a.id DESC LIMIT 1),
                (SELECT COUNT(*) FROM deliveries d WHERE d.destination = t.name
                 AND d.state IN ('pending', 'retrying', 'held')),
                (SELECT MIN(d.created_at) FROM deliveries d WHERE d.destination = t.name
                 AND d.state IN ('pending', 'retrying', 'held')),
                (SELECT COUNT(*) FROM deliveries d WHERE d.destination = t.name
                 AND d.state = 'dead')
            FROM destinations t ORDER BY t.name
            """,
            [now - 3600, now - 3600],
        )
        return [DestinationStatus(*row) for row in found]

    async def _read(self, sql: str, parameters: Sequence[Any]) -> Iterable[sqlite3.Row]:
        if self._reader is None:
            raise StoreError("the store is not open")
        try:
            return await self._reader.execute_fetchall(sql, parameters)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the database: {exc}") from exc


async def _connect(path: str) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        await db.execute("PRAGMA synchronous = FULL")
        await db.execute("PRAGMA busy_timeout = 5000")
    except BaseException:
        await db.close()
        raise
    return db


_TASK_SEEN = """
    INSERT INTO tasks (source, task_id, business_id, state, created_at, last_seen_at, expires_at,
        next_check_at, updated_at)
    VALUES (?, ?, ?, 'tracked', ?, ?, ?, ?, ?)
    ON CONFLICT (source, task_id) DO UPDATE SET last_seen_at = excluded.last_seen_at,
        next_check_at = excluded.next_check_at, updated_at = excluded.updated_at
    WHERE tasks.state = 'tracked'
"""
_TASK_CONFIRMING = """
    INSERT INTO tasks (source, task_id, business_id, state, event_id, created_at, last_seen_at,
        expires_at, next_check_at, updated_at)
    VALUES (?, ?, ?, 'confirming', ?, ?, ?, ?, ?, ?)
    ON CONFLICT (source, task_id) DO UPDATE SET state = 'confirming', event_id = excluded.event_id,
        last_seen_at = excluded.last_seen_at, next_check_at = excluded.next_check_at,
        checks = 0, last_error = NULL, updated_at = excluded.updated_at
"""
_TASK_DONE = """
    UPDATE tasks SET state = 'done', updated_at = ?
    WHERE source = ? AND task_id = ? AND state IN ('tracked', 'lost')
"""


async def _apply_task_change(db: aiosqlite.Connection, change: TaskChange, now: float) -> None:
    if change.kind == "seen":
        await db.execute(
            _TASK_SEEN,
            (
                change.source,
                change.task_id,
                change.business_id,
                now,
                now,
                change.expires_at,
                change.next_check_at,
                now,
            ),
        )
    elif change.kind == "confirming":
        await db.execute(
            _TASK_CONFIRMING,
            (
                change.source,
                change.task_id,
                change.business_id,
                change.event_id,
                now,
                now,
                change.expires_at,
                change.next_check_at,
                now,
            ),
        )
    else:
        await db.execute(_TASK_DONE, (now, change.source, change.task_id))


def _event_filters(query: EventQuery) -> tuple[list[str], list[Any]]:
    conditions: list[str] = []
    parameters: list[Any] = []
    for column, value in (
        ("e.source", query.source),
        ("e.type", query.type),
        ("e.status", query.status),
        ("e.task_id", query.task_id),
        ("e.business_id", query.business_id),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            parameters.append(value)
    if query.label is not None:
        conditions.append("EXISTS (SELECT 1 FROM json_each(e.labels) WHERE value = ?)")
        parameters.append(query.label)
    if query.flagged is not None:
        conditions.append("e.flagged = ?")
        parameters.append(int(query.flagged))
    if query.since is not None:
        conditions.append("e.received_at >= ?")
        parameters.append(format_time(query.since))
    if query.until is not None:
        conditions.append("e.received_at < ?")
        parameters.append(format_time(query.until))
    if query.before is not None:
        conditions.append("e.id < ?")
        parameters.append(query.before)
    return conditions, parameters


def _delivery_filters(query: DeliveryQuery) -> tuple[list[str], list[Any]]:
    conditions, parameters = [], []
    for column, value in (
        ("d.state", query.state),
        ("d.event_id", query.event_id),
        ("d.destination", query.destination),
        ("d.id", query.delivery_id),
        ("d.id <", query.before),
    ):
        if value is not None:
            conditions.append(f"{column} ?" if column.endswith("<") else f"{column} = ?")
            parameters.append(value)
    return conditions, parameters


_PRUNABLE_EVENTS = """
    SELECT e.id FROM events e WHERE e.received_at < ? AND NOT EXISTS (
        SELECT 1 FROM deliveries d
        WHERE d.event_id = e.id AND d.state IN ('pending', 'retrying', 'held', 'confirming')
    )
"""
_PRUNABLE_RECEIPTS = """
    SELECT r.id FROM receipts r WHERE r.received_at < ?
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.receipt_id = r.id)
"""
_PRUNE_COUNTS = f"""
    SELECT
        (SELECT COUNT(*) FROM ({_PRUNABLE_EVENTS})),
        (SELECT COUNT(*) FROM receipts r WHERE r.received_at < ? AND NOT EXISTS (
            SELECT 1 FROM events e WHERE e.receipt_id = r.id AND e.id NOT IN ({_PRUNABLE_EVENTS})
        )),
        (SELECT COUNT(*) FROM deliveries WHERE event_id IN ({_PRUNABLE_EVENTS})),
        (SELECT COUNT(*) FROM attempts WHERE delivery_id IN (
            SELECT id FROM deliveries WHERE event_id IN ({_PRUNABLE_EVENTS})))
"""  # noqa: S608


async def _prune_batch(db: aiosqlite.Connection, cutoff: str, batch: int) -> Pruned:
    """Delete up to ``batch`` old events with nothing left to deliver, then orphaned receipts."""
    cursor = await db.execute(f"{_PRUNABLE_EVENTS} LIMIT ?", (cutoff, batch))
    ids = [event_id for (event_id,) in await cursor.fetchall()]
    marks = ", ".join("?" * len(ids))
    attempts = deliveries = events = 0
    if ids:
        attempts = (
            await db.execute(
                "DELETE FROM attempts WHERE delivery_id IN"  # noqa: S608
                f" (SELECT id FROM deliveries WHERE event_id IN ({marks}))",
                ids,
            )
        ).rowcount
        deliveries = (
            await db.execute(f"DELETE FROM deliveries WHERE event_id IN ({marks})", ids)  # noqa: S608
        ).rowcount
        events = (await db.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)).rowcount  # noqa: S608
    receipts = (
        await db.execute(
            f"DELETE FROM receipts WHERE id IN ({_PRUNABLE_RECEIPTS} LIMIT ?)",  # noqa: S608
            (cutoff, batch),
        )
    ).rowcount
    return Pruned(events, receipts, deliveries, attempts)


async def _existing(
    db: aiosqlite.Connection, task_ids: set[str]
) -> tuple[dict[Key, tuple[str, bytes]], dict[tuple[str, str], int]]:
    """The stored events of these tasks: key -> (event id, body hash of its receipt); and the
    highest status rank each task has reached."""
    found: dict[Key, tuple[str, bytes]] = {}
    ranks: dict[tuple[str, str], int] = {}
    ids = list(task_ids)
    for start in range(0, len(ids), _PARAMETERS_PER_QUERY):
        chunk = ids[start : start + _PARAMETERS_PER_QUERY]
        cursor = await db.execute(
            "SELECT e.task_id, e.source, e.status, e.id, r.body_sha256, e.status_rank"  # noqa: S608
            " FROM events e JOIN receipts r ON r.id = e.receipt_id"
            f" WHERE e.task_id IN ({', '.join('?' * len(chunk))})",
            chunk,
        )
        for task_id, source, status, event_id, body_sha256, rank in await cursor.fetchall():
            found[(task_id, source, status)] = (event_id, body_sha256)
            ranks[(task_id, source)] = max(rank, ranks.get((task_id, source), 0))
    return found, ranks


async def _claims(db: aiosqlite.Connection, ids: list[str]) -> list[Claim]:
    claims = []
    for start in range(0, len(ids), _PARAMETERS_PER_QUERY):
        chunk = ids[start : start + _PARAMETERS_PER_QUERY]
        cursor = await db.execute(
            f"SELECT {rows.DELIVERY_COLUMNS}, {rows.EVENT_COLUMNS} FROM deliveries d"  # noqa: S608
            " JOIN events e ON e.id = d.event_id JOIN receipts r ON r.id = e.receipt_id"
            f" WHERE d.id IN ({', '.join('?' * len(chunk))}) ORDER BY d.event_id",
            chunk,
        )
        for row in await cursor.fetchall():
            claims.append(Claim(rows.delivery(row[:11]), rows.event(row[11:])))
    return claims


async def _destination_of(db: aiosqlite.Connection, delivery_id: str) -> str:
    cursor = await db.execute("SELECT destination FROM deliveries WHERE id = ?", (delivery_id,))
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def _set_destination_state(
    db: aiosqlite.Connection, name: str, state: str, reason: str | None, now: float
) -> bool:
    cursor = await db.execute(
        "UPDATE destinations SET state = ?, reason = ?, updated_at = ? WHERE name = ?",
        (state, reason, now, name),
    )
    if cursor.rowcount == 0:
        return False
    if state == "active":
        await db.execute(
            "UPDATE deliveries SET state = CASE WHEN tries > 0 THEN 'retrying' ELSE 'pending' END,"
            " next_attempt_at = ?, updated_at = ? WHERE destination = ? AND state = 'held'",
            (now, now, name),
        )
    else:
        # Deliveries in flight finish; the rest wait, visible as held, until it is resumed.
        await db.execute(
            "UPDATE deliveries SET state = 'held', updated_at = ? WHERE destination = ?"
            " AND state IN ('pending', 'retrying')"
            " AND (lease_expires_at IS NULL OR lease_expires_at <= ?)",
            (now, name, now),
        )
    return True


async def _hold_inactive(db: aiosqlite.Connection, now: float) -> None:
    """Deliveries created while their destination was paused or disabled wait as held."""
    await db.execute(
        "UPDATE deliveries SET state = 'held', updated_at = ?"
        " WHERE state IN ('pending', 'retrying') AND lease_owner IS NULL"
        " AND destination IN (SELECT name FROM destinations WHERE state != 'active')",
        (now,),
    )


_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, event_id, destination, source, task_id, state,"
    " next_attempt_at, last_error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
