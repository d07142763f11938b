"""SQLite's writing connection: a sqlite3 connection in a thread of its own, where each write
transaction runs whole, in one trip to that thread.

The shared SQL is written as coroutines over a :class:`~.tx.Tx`. Over this connection they never
suspend, since every statement runs at once in the thread; so a transaction is driven to its end
there, from ``BEGIN IMMEDIATE`` to ``COMMIT``. SQLite's write lock, which every other process
waits for, is then held for the SQL alone. With a trip per statement, as through aiosqlite, it
would be held across trips through the event loop (eight for a claim, each as slow as the loop
is busy), and a ``serve`` beside the worker could not commit the callbacks it is answering.

Group commit goes further: its batches are begun from this thread (:meth:`Writer.post`,
:class:`~.groupcommit.ThreadGroupCommit`), so the event loop is not on the way between two.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from receiver.store.tx import Dialect, Row, Tx

T = TypeVar("T")

logger = logging.getLogger("photohook.store")

#: Seconds between attempts to take the write lock while another process holds it. SQLite's own
#: wait (``busy_timeout``) sleeps 1, 2, 5, 10, 15... ms between looks, which made a worker and a
#: ``serve`` beside it wait for each other far longer than either held the lock.
_LOCK_PAUSE = 0.001


class Writer:
    """The connection that writes, open in its own thread."""

    def __init__(self, dialect: Dialect, *, busy_timeout: float) -> None:
        self._dialect = dialect
        self._busy_timeout = busy_timeout
        self._executor = _thread()
        self._db: sqlite3.Connection | None = None
        self._durable = True  # whether commits are flushed to disk: synchronous = FULL
        #: Transactions this connection has committed.
        self.commits = 0

    async def open(self, path: str) -> None:
        """Connect; ``synchronous = FULL``, and lock waits are :meth:`transaction`'s to make."""
        self._db = await self._in_thread(functools.partial(_open, path))
        self._durable = True

    @property
    def opened(self) -> bool:
        return self._db is not None

    async def execute(self, sql: str) -> list[Row]:
        """One statement outside a transaction (a ``PRAGMA``, say); its rows."""
        return await self.call(lambda db: db.execute(sql).fetchall())

    async def call(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """``function(connection)``, in the connection's thread."""
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the writer is not open")
        return await self._in_thread(functools.partial(function, db))

    async def transaction(self, work: Callable[[Tx], Awaitable[T]], *, durable: bool = True) -> T:
        """``work`` in a write transaction, whole, in the connection's thread (see
        :meth:`transact_here`)."""
        return await self._in_thread(functools.partial(self.transact_here, work, durable=durable))

    def transact_here(self, work: Callable[[Tx], Awaitable[T]], *, durable: bool = True) -> T:
        """``work`` in a write transaction: committed when it returns, rolled back when it
        raises. Called in the connection's thread (from a function given to :meth:`post`).
        The commit is flushed to disk if ``durable`` (``synchronous = FULL``); else it is only
        written to the WAL (``NORMAL``), and flushed with the next commit that is.
        While another process holds the write lock, it is tried again every millisecond, for up
        to the busy timeout, the thread sleeping meanwhile: what else it has queued is write
        transactions, which would wait for the same lock, or a look at ``data_version``, which
        can wait."""
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the writer is not open")
        if durable != self._durable:
            db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            self._durable = durable
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                result = _whole(work, self._dialect, db)
            except _Busy:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("database is locked") from None
            else:
                self.commits += 1
                return result
            time.sleep(_LOCK_PAUSE)

    def post(self, function: Callable[[], None]) -> None:
        """Run ``function`` in the connection's thread, after whatever it was given before; what
        it raises is logged (it has no one else to tell)."""
        self._executor.submit(function).add_done_callback(_log_failure)

    async def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                await self.call(sqlite3.Connection.close)
            self._db = None
        self._executor.shutdown(wait=False)
        self._executor = _thread()  # a store's lifespan may open it again

    async def _in_thread(self, function: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)


def _thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="photohook-sqlite-writer")


def _log_failure(done: Future[None]) -> None:
    exc = done.exception()
    if exc is not None:
        logger.error("the SQLite writer's thread failed", exc_info=exc)


class _Busy(Exception):
    """Another process holds the write lock."""


class _ThreadTx:
    """Statements run at once on the connection, in its thread (see :func:`_drive`)."""

    def __init__(self, db: sqlite3.Connection, dialect: Dialect) -> None:
        self._db = db
        self.dialect = dialect

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        cursor = self._db.execute(sql, parameters)
        cursor.close()  # no statement may be left running at COMMIT
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)

    async def fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        return self._db.execute(sql, parameters).fetchall()

    async def notify(self) -> None:
        """Nothing to do: workers in this process are woken directly, others watch the file."""


def _open(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA busy_timeout = 0")
    except BaseException:
        db.close()
        raise
    return db


def _whole(work: Callable[[Tx], Awaitable[T]], dialect: Dialect, db: sqlite3.Connection) -> T:
    """What ``work`` returned, committed; :class:`_Busy` when another process holds the write
    lock."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise _Busy from None
        raise
    try:
        result = _drive(work(_ThreadTx(db, dialect)))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
    return result


def _drive(work: Awaitable[T]) -> T:
    """Run a coroutine that never suspends to its end, here and now."""
    assert isinstance(work, Coroutine)
    try:
        work.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    work.close()
    raise RuntimeError("a transaction awaited something other than its statements")
