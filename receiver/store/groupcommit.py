"""Group commit: the writes of concurrent requests share one transaction and one fsync."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from ..errors import StoreError, StoreUnavailable

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("photohook.store")

WriteBatch = Callable[[Sequence[T]], Awaitable[Sequence[R]]]


class GroupCommit(Generic[T, R]):
    """One writer task that commits whatever is waiting as one batch.

    While a batch is being committed the next one gathers, so the number of commits follows the
    database's speed rather than the request rate. ``write_batch`` must be atomic: it commits all
    of a batch or none. When a batch fails, each of its items is written again alone, so one
    item's failure never rolls back another's; unless the database itself is out of reach
    (:class:`StoreUnavailable`), when the whole batch fails at once: one by one, each would wait
    out the same timeout.
    """

    def __init__(self, write_batch: WriteBatch[T, R], *, max_batch: int = 256) -> None:
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        self.committed_items = 0

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
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(batch)
            if self._closing:
                return

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write_batch([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or isinstance(exc, StoreUnavailable):
                for _, future in batch:
                    _settle(future, exc)
                return
            logger.warning("a batch of %d writes failed (%s); retrying each alone", len(batch), exc)
            for entry in batch:
                await self._commit([entry])
            return
        self.commits += 1
        self.committed_items += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: asyncio.Future[R], outcome: R | Exception) -> None:
    if future.done():  # the waiting request was cancelled; its write stands
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
