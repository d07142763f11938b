"""Group commit: the writes of concurrent requests share one transaction and one fsync.

Two drivers share one policy. :class:`GroupCommit` commits from an event-loop task, for an
engine whose transactions are coroutines (PostgreSQL). :class:`ThreadGroupCommit` commits from
the thread that holds the engine's one writing connection (SQLite), which takes whatever is
waiting as it begins each transaction.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

from receiver.errors import StoreError, StoreUnavailable

T = TypeVar("T")
R = TypeVar("R")
T_contra = TypeVar("T_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)

logger = logging.getLogger("photohook.store")

WriteBatch = Callable[[Sequence[T]], Awaitable[Sequence[R]]]
#: Writes a batch in the calling thread; the thread group commit's counterpart of WriteBatch.
WriteBatchHere = Callable[[Sequence[T]], Sequence[R]]
#: Runs a function in the writing connection's thread, after what that thread already has.
Post = Callable[[Callable[[], None]], None]

Batch = list[tuple[T, asyncio.Future[R]]]


class Committer(Protocol[T_contra, R_co]):
    """What the store needs of a group commit."""

    commits: int

    def start(self) -> None: ...

    async def submit(self, item: T_contra) -> R_co: ...

    async def stop(self) -> None: ...


class _Policy(Generic[T, R]):
    """What both drivers share: the batch size, the count of commits, and what a failed batch
    means.

    ``write_batch`` must be atomic: it commits all of a batch or none. When a batch fails, each
    of its items is written again alone, so one item's failure never rolls back another's;
    unless the database itself is out of reach (:class:`StoreUnavailable`), when the whole batch
    fails at once: one by one, each would wait out the same timeout.
    """

    def __init__(self, max_batch: int) -> None:
        self._max_batch = max_batch
        self._pending: Batch[T, R] = []
        self._closing = False
        self.commits = 0

    def _take(self) -> Batch[T, R]:
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        return batch

    def _retry_alone(self, batch: Batch[T, R], exc: Exception) -> Iterator[Batch[T, R]]:
        """The batches of one to write again after ``batch`` failed with ``exc``: none when
        ``exc`` stands for every item (it is then theirs)."""
        if len(batch) == 1 or isinstance(exc, StoreUnavailable):
            self._settle(batch, [exc] * len(batch))
            return
        logger.warning("a batch of %d writes failed (%s); retrying each alone", len(batch), exc)
        for entry in batch:
            yield [entry]

    def _committed(self, batch: Batch[T, R], results: Sequence[R]) -> None:
        self.commits += 1
        self._settle(batch, results)

    def _settle(self, batch: Batch[T, R], outcomes: Sequence[R | Exception]) -> None:
        raise NotImplementedError


class GroupCommit(_Policy[T, R]):
    """One writer task that commits whatever is waiting as one batch.

    While a batch is being committed the next one gathers, so the number of commits follows the
    database's speed rather than the request rate.
    """

    def __init__(self, write_batch: WriteBatch[T, R], *, max_batch: int = 256) -> None:
        super().__init__(max_batch)
        self._write_batch = write_batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="photohook-group-commit")

    async def submit(self, item: T) -> R:
        """Commit ``item`` with whatever else is waiting; return its result once durable."""
        if self._closing or self._task is None:
            raise StoreError("the store is not accepting writes")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        return await future

    async def stop(self) -> None:
        """Commit everything submitted so far, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._commit(self._take())
            if self._closing:
                return

    async def _commit(self, batch: Batch[T, R]) -> None:
        try:
            results = await self._write_batch([item for item, _ in batch])
        except Exception as exc:
            for alone in self._retry_alone(batch, exc):
                await self._commit(alone)
            return
        self._committed(batch, results)

    def _settle(self, batch: Batch[T, R], outcomes: Sequence[R | Exception]) -> None:
        _settle_all(batch, outcomes)


class ThreadGroupCommit(_Policy[T, R]):
    """Group commit driven by the writing connection's own thread.

    That thread takes what is waiting as it begins a transaction and, once it has committed,
    hands the results to the event loop and goes straight on to the next batch. Driven from the
    event loop, each batch also cost a trip from the busy loop to the thread and back, during
    which the thread sat idle: under load, a third of the time per batch.

    Between two batches the thread runs whatever else it was given meanwhile (a claim, say), so
    a steady stream of writes never starves the connection's other transactions.
    """

    def __init__(self, write_batch: WriteBatchHere[T, R], post: Post, *, max_batch: int = 256):
        super().__init__(max_batch)
        self._write_batch = write_batch
        self._post = post
        self._lock = threading.Lock()  # the pending list and the draining flag, across threads
        self._draining = False
        self._stopped: asyncio.Future[None] | None = None  # stop() waits for the last batch
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def submit(self, item: T) -> R:
        """Commit ``item`` with whatever else is waiting; return its result once durable."""
        if self._closing or self._loop is None:
            raise StoreError("the store is not accepting writes")
        future: asyncio.Future[R] = self._loop.create_future()
        with self._lock:
            self._pending.append((item, future))
            begin, self._draining = not self._draining, True
        if begin:
            self._post(self._drain)
        return await future

    async def stop(self) -> None:
        """Commit everything submitted so far, then stop."""
        self._closing = True
        if self._loop is None:
            return
        with self._lock:
            if not self._draining:
                return
            if self._stopped is None:
                self._stopped = self._loop.create_future()
            stopped = self._stopped
        await stopped

    def _drain(self) -> None:
        """In the writer's thread: commit one batch, then come back if more is waiting. Only
        one of these is posted at a time, and only while something is waiting."""
        with self._lock:
            batch = self._take()
        try:
            self._commit(batch)
        finally:
            with self._lock:
                again = self._draining = bool(self._pending)
                stopped = self._stopped
            if again:
                self._post(self._drain)
            elif stopped is not None:
                assert self._loop is not None
                self._loop.call_soon_threadsafe(_resolve, stopped)

    def _commit(self, batch: Batch[T, R]) -> None:
        try:
            results = self._write_batch([item for item, _ in batch])
        except Exception as exc:
            for alone in self._retry_alone(batch, exc):
                self._commit(alone)
            return
        self._committed(batch, results)

    def _settle(self, batch: Batch[T, R], outcomes: Sequence[R | Exception]) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_settle_all, batch, outcomes)


def _settle_all(batch: Batch[T, R], outcomes: Sequence[R | Exception]) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():  # the waiting request was cancelled; its write stands
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
