"""The embedded store: SQLite in WAL mode with ``synchronous=FULL``.

One connection writes (:mod:`.sqlite_writer`: each transaction whole, in its thread, where group
commit takes its batches); another reads, through aiosqlite, so that listing never waits for a
commit. ``BEGIN IMMEDIATE`` makes writers take turns, across processes too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiosqlite

from receiver.errors import StoreError
from receiver.store.groupcommit import Committer, ThreadGroupCommit
from receiver.store.migrations import Migration, SchemaChange, has_schema, migrate, no_database
from receiver.store.sqlite_writer import Writer
from receiver.store.sqlstore import BatchWork, SQLStore
from receiver.store.tx import Dialect, Row, Tx

T = TypeVar("T")
Item = TypeVar("Item")

logger = logging.getLogger("photohook.store")

DIALECT = Dialect(
    name="sqlite",
    table_exists=(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{table}')"
    ),
    json_array_holds="EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)",
    unindexed="+",
)


class _Tx:
    """Reads, through aiosqlite."""

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
        """Reads notify no one."""


class SQLiteStore(SQLStore):
    """A :class:`~receiver.store.Store` in one SQLite file."""

    errors = (sqlite3.Error,)

    def __init__(self, path: str, *, max_batch: int = 256) -> None:
        # Made before the group commits, which are given its thread.
        self._writer = Writer(DIALECT, busy_timeout=_BUSY_TIMEOUT)
        super().__init__(max_batch=max_batch)
        self.path = path
        self._reader: aiosqlite.Connection | None = None
        self._watch: asyncio.Task[None] | None = None

    async def _connect(self, *, migrate: bool, create: bool) -> None:
        if not create and not await asyncio.to_thread(os.path.isfile, self.path):
            raise no_database(repr(self.path))
        try:
            writer = self._writer
            await writer.open(self.path)

            async def prepare() -> None:
                if not create and not await writer.transaction(has_schema):
                    raise no_database(repr(self.path))
                await writer.execute("PRAGMA journal_mode = WAL")
                self.schema = await writer.transaction(functools.partial(_migrate, apply=migrate))

            # While another process turns a new file to WAL, SQLite answers "locked" however
            # long it would wait: try again, less often than for a transaction.
            await _while_locked(prepare, pause=0.05)
            self._reader = await aiosqlite.connect(self.path, isolation_level=None)
            await self._reader.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT * 1000)}")
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
        seen_commits = 0
        looked = failing = False
        last_write = loop.time()
        unsettled_since: float | None = None
        while True:
            quiet = loop.time() - last_write > _WATCH_QUIET_AFTER
            await asyncio.sleep(_WATCH_QUIET_INTERVAL if quiet else _WATCH_INTERVAL)
            commits = self._writer.commits  # before the look: see below
            written = _written(wal)
            if looked and written == seen_file and not failing:
                continue  # nobody has written since the last look
            looked, last_write = True, loop.time()
            if not self._writer.opened:
                return
            try:
                [(version,)] = await self._writer.execute("PRAGMA data_version")
            except sqlite3.Error as exc:  # the sweep still runs; look again next time
                if not failing:
                    logger.warning("cannot watch for other processes' commits: %s", exc)
                failing = True
                continue
            failing = False
            if seen_version is not None and version != seen_version:
                wake()
            # The file changed, yet no other connection's commit shows and this process made
            # none: another process is between writing its commit to the WAL and publishing it
            # (it waits for the disk in between). Look again next time, for up to a second;
            # past that, the worker's sweep covers it.
            if version != seen_version or commits != seen_commits:
                seen_file, unsettled_since = written, None
            elif unsettled_since is None:
                unsettled_since = loop.time()
            elif loop.time() - unsettled_since > _WATCH_QUIET_AFTER:
                seen_file, unsettled_since = written, None
            seen_version, seen_commits = version, commits

    async def _disconnect(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._reader is not None:
            with contextlib.suppress(sqlite3.Error):
                await self._reader.close()
        await self._writer.close()
        self._reader = None

    async def _in_transaction(
        self, work: Callable[[Tx], Awaitable[T]], *, durable: bool = True
    ) -> T:
        if not self._writer.opened:
            raise StoreError("the store is not open")
        return await self._writer.transaction(work, durable=durable)

    def _group_commit(
        self, doing: str, work: BatchWork[Item, T], max_batch: int, *, durable: bool = True
    ) -> Committer[Item, T]:
        """Committed from the writer's thread, which takes what is waiting as it begins each
        transaction (see :class:`~.groupcommit.ThreadGroupCommit`). Errors become store errors
        as in :meth:`_run`; SQLite has no ``transient`` ones to run again (one writer at a
        time)."""

        def write_batch(items: Sequence[Item]) -> Sequence[T]:
            now = time.time()
            try:
                return self._writer.transact_here(lambda tx: work(tx, items, now), durable=durable)
            except sqlite3.Error as exc:
                raise self._failure(doing, exc) from exc

        return ThreadGroupCommit(write_batch, self._writer.post, max_batch=max_batch)

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[_Tx]:
        if self._reader is None:
            raise StoreError("the store is not open")
        yield _Tx(self._reader)


async def _migrate(tx: Tx, *, apply: bool) -> SchemaChange:
    async def run_script(migration: Migration) -> None:
        for statement in migration.statements():  # one at a time, as sqlite3 runs them
            await tx.execute(statement)

    return await migrate(tx, apply=apply, run_script=run_script)


#: Seconds between looks at whether another process has committed: while the database is being
#: written, and once it has been quiet for a second (a wake-up costs CPU even when idle).
_WATCH_INTERVAL = 0.01
_WATCH_QUIET_INTERVAL = 0.05
_WATCH_QUIET_AFTER = 1.0
_BUSY_TIMEOUT = 5.0


def _written(wal: str) -> tuple[int, int] | None:
    """When the WAL file was last written, and its size (None: there is none)."""
    try:
        status = os.stat(wal)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


async def _while_locked(attempt: Callable[[], Awaitable[object]], *, pause: float) -> None:
    """Run ``attempt`` again every ``pause`` seconds while SQLite answers "locked", for up to
    the busy timeout (the writer connection does not wait in SQLite)."""
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            await attempt()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(pause)
