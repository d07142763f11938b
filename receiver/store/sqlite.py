"""The embedded store: SQLite in WAL mode with ``synchronous=FULL``, through aiosqlite.

One connection writes, through the group committer; another reads, so that listing never waits
for a commit. ``BEGIN IMMEDIATE`` makes writers take turns, across processes too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from ..errors import StoreError
from ..events import format_time
from .migrations import not_migrated, pending
from .sqlstore import SQLStore
from .tx import Dialect, Row

logger = logging.getLogger("photohook.store")

DIALECT = Dialect(
    name="sqlite",
    json_array_holds="EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)",
)


class _Tx:
    dialect = DIALECT

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        cursor = await self._db.execute(sql, parameters)
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._db.executemany(sql, rows)

    async def fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        return list(await self._db.execute_fetchall(sql, parameters))

    async def notify(self) -> None:
        """Nothing to do: workers in this process are woken directly, others sweep."""


class SQLiteStore(SQLStore):
    """A :class:`~receiver.store.Store` in one SQLite file."""

    errors = (sqlite3.Error,)

    def __init__(self, path: str, *, max_batch: int = 256) -> None:
        super().__init__(max_batch=max_batch)
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None

    async def _connect(self, *, migrate: bool) -> None:
        try:
            self._writer = await _connect(self.path)
            writer = self._writer
            # Waits for another process's write lock are ours to make (see _while_locked).
            await writer.execute("PRAGMA busy_timeout = 0")

            async def prepare() -> None:
                await writer.execute("PRAGMA journal_mode = WAL")
                await self._migrate(apply=migrate)

            # While another process turns a new file to WAL, SQLite answers "locked" however
            # long it would wait: try again, less often than for a transaction.
            await _while_locked(prepare, pause=0.05)
            self._reader = await _connect(self.path)
            await self._reader.execute("PRAGMA query_only = 1")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite database {self.path!r}: {exc}") from exc

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` soon after another process commits (new deliveries, say).

        SQLite has no notifications. Every 10 ms (50 ms after a quiet second) the WAL file is
        looked at, a ``stat`` and no query; when it has changed, the writer connection's
        ``PRAGMA data_version`` says whether another connection committed. A ``photohook
        worker`` beside ``serve --no-worker`` so starts on a new delivery within tens of
        milliseconds, not at its next sweep. A commit that brings no due delivery costs one
        empty claim.
        """
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_commits(wake), name="photohook-watch")

    async def _watch_commits(self, wake: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        wal = f"{self.path}-wal"
        seen_file: tuple[int, int] | None = None
        seen_version: int | None = None
        looked = failing = False
        last_write = loop.time()
        while True:
            quiet = loop.time() - last_write > _WATCH_QUIET_AFTER
            await asyncio.sleep(_WATCH_QUIET_INTERVAL if quiet else _WATCH_INTERVAL)
            try:
                status = os.stat(wal)
                written = (status.st_mtime_ns, status.st_size)
            except OSError:
                written = None
            if looked and written == seen_file and not failing:
                continue  # nobody has written since the last look
            looked, seen_file, last_write = True, written, loop.time()
            try:
                async with self._write_lock:
                    if self._writer is None:
                        return
                    [(version,)] = await self._writer.execute_fetchall("PRAGMA data_version")
            except sqlite3.Error as exc:  # the sweep still runs; look again next time
                if not failing:
                    logger.warning("cannot watch for other processes' commits: %s", exc)
                failing = True
                continue
            failing = False
            if seen_version is not None and version != seen_version:
                wake()
            seen_version = version

    async def _disconnect(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        for connection in (self._reader, self._writer):
            if connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    await connection.close()
        self._reader = self._writer = None

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Tx]:
        db = self._writer
        if db is None:
            raise StoreError("the store is not open")
        async with self._write_lock:
            await _while_locked(lambda: db.execute("BEGIN IMMEDIATE"), pause=0.001)
            try:
                yield _Tx(db)
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        await db.execute("ROLLBACK")
                raise

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[_Tx]:
        if self._reader is None:
            raise StoreError("the store is not open")
        yield _Tx(self._reader)

    async def _migrate(self, *, apply: bool) -> None:
        assert self._writer is not None
        async with self._transaction():
            db = self._writer
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = {row[0] for row in await db.execute_fetchall(_APPLIED)}
            todo = pending("sqlite", applied)
            if todo and not apply:
                raise not_migrated(todo)
            for migration in todo:
                for statement in migration.statements():
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, format_time(datetime.now(UTC))),
                )
                logger.info("applied migration %04d_%s", migration.version, migration.name)


_APPLIED = "SELECT version FROM schema_migrations"
#: Seconds between looks at whether another process has committed: while the database is being
#: written, and once it has been quiet for a second (a wake-up costs CPU even when idle).
_WATCH_INTERVAL = 0.01
_WATCH_QUIET_INTERVAL = 0.05
_WATCH_QUIET_AFTER = 1.0
_BUSY_TIMEOUT = 5.0


async def _while_locked(attempt: Callable[[], Awaitable[object]], *, pause: float) -> None:
    """Run ``attempt`` again every ``pause`` seconds while another process holds SQLite's write
    lock, for up to the busy timeout. The writer connection waits here rather than in SQLite,
    whose own wait sleeps 1, 2, 5, 10, 15... ms between looks."""
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            await attempt()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(pause)


async def _connect(path: str) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        await db.execute("PRAGMA synchronous = FULL")
        await db.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT * 1000)}")
    except BaseException:
        await db.close()
        raise
    return db
