"""The embedded store: SQLite in WAL mode with ``synchronous=FULL``, through aiosqlite.

One connection writes, through the group committer; another reads, so that listing never waits
for a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import orjson

from ..errors import StoreError
from ..events import Event, format_time, parse_time
from ..tokens import generate_key
from . import EventQuery, Receipt, Stored
from .groupcommit import GroupCommit
from .migrations import migrations

logger = logging.getLogger("photohook.store")

_PARAMETERS_PER_QUERY = 500
_EVENT_COLUMNS = """
    e.id, e.source, e.kind, e.type, e.task_id, e.task_type, e.status, e.business_id,
    e.labels, e.result_urls, e.flagged, e.received_at, e.via, r.body
"""

# (task_id, source, status): the idempotency key, in the order of the unique index.
_Key = tuple[str, str, str]


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

    async def close(self) -> None:
        await self._commits.stop()
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
        async with self._transaction() as db:
            known = await _existing(db, {e.task_id for r in receipts for e in r.events})
            receipt_rows: list[tuple[Any, ...]] = []
            event_rows: list[tuple[Any, ...]] = []
            duplicates: list[tuple[str]] = []
            results = []
            for receipt in receipts:
                event_ids, new_ids, body_differs = [], [], False
                for event in receipt.events:
                    key = (event.task_id, event.source, event.status)
                    found = known.get(key)
                    if found is None:
                        known[key] = (event.id, receipt.body_sha256)
                        event_rows.append(_event_row(event, receipt.id))
                        new_ids.append(event.id)
                        event_ids.append(event.id)
                    else:
                        event_ids.append(found[0])
                        duplicates.append((found[0],))
                        body_differs |= found[1] != receipt.body_sha256
                if new_ids or body_differs:
                    receipt_rows.append(_receipt_row(receipt, event_ids, duplicate=not new_ids))
                results.append(Stored(tuple(event_ids), tuple(new_ids)))
            if receipt_rows:
                await db.executemany(
                    "INSERT INTO receipts (id, source, via, received_at, peer, client, headers,"
                    " body, body_sha256, event_ids, duplicate)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    receipt_rows,
                )
            if event_rows:
                await db.executemany(
                    "INSERT INTO events (id, source, kind, type, task_id, task_type, status,"
                    " business_id, labels, result_urls, flagged, received_at, via, receipt_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    event_rows,
                )
            if duplicates:
                await db.executemany(
                    "UPDATE events SET duplicates = duplicates + 1 WHERE id = ?", duplicates
                )
        return results

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
        conditions, parameters = [], []
        for column, value in (
            ("e.source", query.source),
            ("e.status", query.status),
            ("e.task_id", query.task_id),
        ):
            if value is not None:
                conditions.append(f"{column} = ?")
                parameters.append(value)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events e JOIN receipts r ON r.id = e.receipt_id"  # noqa: S608
            f" {where} ORDER BY e.id DESC LIMIT ?"
        )
        rows = await self._read(sql, [*parameters, query.limit])
        return [_event(row) for row in rows]

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


async def _existing(db: aiosqlite.Connection, task_ids: set[str]) -> dict[_Key, tuple[str, bytes]]:
    """The stored events of these tasks: key -> (event id, body hash of its receipt)."""
    found: dict[_Key, tuple[str, bytes]] = {}
    ids = list(task_ids)
    for start in range(0, len(ids), _PARAMETERS_PER_QUERY):
        chunk = ids[start : start + _PARAMETERS_PER_QUERY]
        cursor = await db.execute(
            "SELECT e.task_id, e.source, e.status, e.id, r.body_sha256"  # noqa: S608
            " FROM events e JOIN receipts r ON r.id = e.receipt_id"
            f" WHERE e.task_id IN ({', '.join('?' * len(chunk))})",
            chunk,
        )
        for task_id, source, status, event_id, body_sha256 in await cursor.fetchall():
            found[(task_id, source, status)] = (event_id, body_sha256)
    return found


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _receipt_row(receipt: Receipt, event_ids: list[str], *, duplicate: bool) -> tuple[Any, ...]:
    return (
        receipt.id,
        receipt.source,
        receipt.via,
        format_time(receipt.received_at),
        receipt.peer,
        receipt.client,
        receipt.headers.decode(),
        receipt.body,
        receipt.body_sha256,
        _json_text(event_ids),
        int(duplicate),
    )


def _event_row(event: Event, receipt_id: str) -> tuple[Any, ...]:
    return (
        event.id,
        event.source,
        event.kind,
        event.type,
        event.task_id,
        event.task_type,
        event.status,
        event.business_id,
        _json_text(event.labels),
        _json_text(event.result_urls),
        int(event.flagged),
        format_time(event.received_at),
        event.via,
        receipt_id,
    )


def _event(row: Any) -> Event:
    (
        event_id,
        source,
        kind,
        event_type,
        task_id,
        task_type,
        status,
        business_id,
        labels,
        result_urls,
        flagged,
        received_at,
        via,
        body,
    ) = row
    return Event(
        id=event_id,
        source=source,
        kind=kind,
        type=event_type,
        task_id=task_id,
        task_type=task_type,
        status=status,
        business_id=business_id,
        labels=tuple(orjson.loads(labels)),
        result_urls=tuple(orjson.loads(result_urls)),
        flagged=bool(flagged),
        received_at=parse_time(received_at),
        payload=orjson.loads(body),
        via=via,
    )
