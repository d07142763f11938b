"""The store both engines share: every operation written once, as SQL over a :class:`Tx`.

An engine supplies connections and transactions (:meth:`SQLStore._in_transaction` and
:meth:`SQLStore._reading`), its migrations, and the exceptions its driver raises.

Every commit is atomic and survives a crash of photohook's process. Most also wait until they
are on disk (``durable``): callbacks, and whatever an operator does. A worker's leases and the
outcomes of its attempts do not. Such a commit may be undone by a power failure or a crash of the
machine (or of the PostgreSQL server) until the next durable commit flushes it too, and losing it
costs no more than a delivery sent again once its lease runs out, which at-least-once delivery
allows; waiting for the disk, each claim would keep the worker's deliveries waiting as long.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import random
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from receiver.errors import StoreError, StoreUnavailable
from receiver.store import (
    activity,
    batches,
    meta,
    outbox,
    pruning,
    queries,
    rejections,
    tasks,
    transfer,
    writes,
)
from receiver.store import kept_files as kept
from receiver.store.groupcommit import Committer, GroupCommit
from receiver.store.migrations import SchemaChange
from receiver.store.records import (
    Claim,
    KeptFile,
    Outcome,
    Pruned,
    Receipt,
    Rejection,
    Stored,
    Task,
)
from receiver.store.tx import Tx

T = TypeVar("T")
Item = TypeVar("Item")
P = ParamSpec("P")
F = TypeVar("F", bound=Callable[..., object])

#: Writes a batch of items in a transaction, at a time given once for the batch; what each did.
BatchWork = Callable[[Tx, Sequence[Item], float], Awaitable[Sequence[T]]]

_ATTEMPTS = 3


def reading(
    body: Callable[Concatenate[Tx, P], Awaitable[T]],
) -> Callable[Concatenate[SQLStore, P], Coroutine[Any, Any, T]]:
    """A method of :class:`SQLStore` that runs ``body(tx, ...)`` on a reading connection."""

    async def method(self: SQLStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._read() as tx:
            return await body(tx, *args, **kwargs)

    return _signed(method, body, given=1)


def writing(
    doing: str, body: Callable[Concatenate[Tx, float, P], Awaitable[T]]
) -> Callable[Concatenate[SQLStore, P], Coroutine[Any, Any, T]]:
    """A method of :class:`SQLStore` that runs ``body(tx, now, ...)`` in a write transaction
    committed on disk (run again, as :meth:`SQLStore._run` does, if it collided with another);
    ``doing`` says what failed in its :class:`StoreError`."""

    async def method(self: SQLStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        now = time.time()
        return await self._run(doing, lambda tx: body(tx, now, *args, **kwargs))

    return _signed(method, body, given=2)


def transacting(
    doing: str, body: Callable[Concatenate[Tx, P], Awaitable[T]]
) -> Callable[Concatenate[SQLStore, P], Coroutine[Any, Any, T]]:
    """As :func:`writing`, for a ``body(tx, ...)`` given only what the method is given."""

    async def method(self: SQLStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(doing, lambda tx: body(tx, *args, **kwargs))

    return _signed(method, body, given=1)


def _signed(method: F, body: Callable[..., object], *, given: int) -> F:
    """``method`` under ``body``'s name and signature, less the ``given`` arguments it is
    passed by the store itself, and with ``self`` first (for ``help()`` and the contract test)."""
    signature = inspect.signature(body)
    parameters = list(signature.parameters.values())[given:]
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = signature.replace(parameters=[self, *parameters])  # type: ignore[attr-defined]
    method.__doc__ = body.__doc__
    return method


class SQLStore:
    """A :class:`~receiver.store.Store` over SQL; subclassed once per engine."""

    #: The exceptions the engine's driver raises for database errors.
    errors: tuple[type[BaseException], ...] = ()
    #: Errors that mean a transaction met a concurrent one (a deadlock, a unique key inserted
    #: meanwhile): running it again sees the other's result.
    transient: tuple[type[BaseException], ...] = ()
    #: Errors that mean the database is out of reach, whatever the operation: raised as
    #: :class:`StoreUnavailable`, so that group commit does not try each item of a batch alone.
    unavailable: tuple[type[BaseException], ...] = ()

    def __init__(self, *, max_batch: int = 256) -> None:
        self.schema: SchemaChange | None = None
        self._commits: Committer[Receipt, Stored] = self._group_commit(
            "could not store the callback", writes.write_batch, max_batch
        )
        self._outcomes: Committer[Outcome, None] = self._group_commit(
            "cannot record a delivery attempt", _finish, max_batch, durable=False
        )
        # Apart from the callbacks' commits, so that a failing or flooding rejection never
        # shares (or splits) a batch of accepted callbacks.
        self._rejections: Committer[Rejection, bool] = self._group_commit(
            "cannot keep the rejected request", rejections.keep, max_batch
        )

    # What each engine provides.

    async def _connect(self, *, migrate: bool, create: bool) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError

    async def _in_transaction(
        self, work: Callable[[Tx], Awaitable[T]], *, durable: bool = True
    ) -> T:
        """``work`` in a write transaction: committed when it returns (on disk, if
        ``durable``), rolled back when it raises. ``work`` awaits nothing but its statements."""
        raise NotImplementedError

    def _reading(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        raise NotImplementedError

    def _group_commit(
        self, doing: str, work: BatchWork[Item, T], max_batch: int, *, durable: bool = True
    ) -> Committer[Item, T]:
        """Concurrent writes of ``work`` committed together: by an event-loop task, unless the
        engine has a better place to commit them from."""

        async def write_batch(items: Sequence[Item]) -> Sequence[T]:
            now = time.time()
            return await self._run(doing, lambda tx: work(tx, items, now), durable=durable)

        return GroupCommit(write_batch, max_batch=max_batch)

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` when another process creates due deliveries (where the engine can)."""

    # The Store interface.

    async def open(self, *, migrate: bool = True, create: bool = True) -> None:
        try:
            await self._connect(migrate=migrate, create=create)
        except BaseException:
            await self._disconnect()
            raise
        self._commits.start()
        self._outcomes.start()
        self._rejections.start()

    async def close(self) -> None:
        await self._commits.stop()
        await self._outcomes.stop()
        await self._rejections.stop()
        await self._disconnect()

    async def _run(
        self, doing: str, work: Callable[[Tx], Awaitable[T]], *, durable: bool = True
    ) -> T:
        """Run ``work`` in a transaction; again, up to three times in all, when it collided with
        another process's transaction (the engine's ``transient`` errors)."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await self._in_transaction(work, durable=durable)
            except self.transient as exc:
                if attempt == _ATTEMPTS:
                    raise StoreError(f"{doing}: {reason(exc)}") from exc
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311
            except self.errors as exc:
                raise self._failure(doing, exc) from exc
        raise AssertionError("unreachable")

    def _failure(self, doing: str, exc: BaseException) -> StoreError:
        kind = StoreUnavailable if isinstance(exc, self.unavailable) else StoreError
        return kind(f"{doing}: {reason(exc)}")

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        try:
            async with self._reading() as tx:
                yield tx
        except self.errors as exc:
            raise self._failure("cannot read the database", exc) from exc

    async def store(self, receipt: Receipt) -> Stored:
        return await self._commits.submit(receipt)

    async def keep_rejected(self, rejection: Rejection) -> bool:
        return await self._rejections.submit(rejection)

    async def finish(self, outcome: Outcome) -> None:
        await self._outcomes.submit(outcome)

    # Reads: the body of each is a function of :mod:`.queries` and its neighbours.
    list_events = reading(queries.list_events)
    get_event = reading(queries.get_event)
    events_by_id = reading(queries.events_by_id)
    event_detail = reading(queries.event_detail)
    deliveries_of = reading(queries.deliveries_of)
    list_deliveries = reading(queries.list_deliveries)
    attempts = reading(queries.attempts)
    callback_counts = reading(activity.callbacks)
    attempt_counts = reading(activity.attempts)
    destination_statuses = reading(outbox.destination_statuses)
    list_tasks = reading(tasks.list_tasks)
    task_summary = reading(tasks.summary)
    list_rejected = reading(rejections.list_rejected)
    get_rejected = reading(rejections.get_rejected)
    table_counts = reading(transfer.counts)
    get_meta = reading(meta.get)
    kept_files = reading(kept.of_events)
    kept_file = reading(kept.get)
    holds_kept_files = reading(kept.any_recorded)
    list_batches = reading(queries.list_batches)
    batch_detail = reading(queries.batch_detail)

    # Writes, committed on disk, each given the time it began.
    accept_rejected = writing("cannot store the retried request", rejections.accept)
    refuse_rejected = writing("cannot record the retry", rejections.refuse)
    requeue = writing("cannot requeue deliveries", outbox.requeue)
    set_destination_state = writing("cannot change the destination", outbox.set_destination_state)
    finish_task = writing("cannot record the task", tasks.finish)
    check_writable = writing("the database is not writable", meta.probe)
    finish_file = writing("cannot record the result file", kept.finish)
    declare_batch = writing("cannot declare the batch", batches.declare)
    close_batch = writing("cannot close the batch", batches.close)
    sweep_batches = writing("cannot sweep the batches", batches.sweep)
    # Given their time by the caller, or needing none.
    track_task = transacting("cannot track the task", tasks.track)
    url_token_key = transacting("cannot read the URL token key", meta.url_token_key)

    # The rest are written out: they copy an argument that a transaction run again would find
    # consumed, lease without waiting for the disk, say in their error what they were given,
    # or take many transactions.

    async def sync_destinations(self, names: Iterable[str]) -> None:
        names = list(names)  # once: a transaction may be run again
        now = time.time()
        await self._run(
            "cannot record the destinations", lambda tx: outbox.sync_destinations(tx, names, now)
        )

    async def claim(
        self,
        limits: Mapping[str, int],
        worker_id: str,
        lease_seconds: float,
        now: float,
        busy: Mapping[str, int] | None = None,
    ) -> tuple[list[Claim], float | None]:
        return await self._run(
            "cannot claim deliveries",
            lambda tx: outbox.claim(tx, limits, worker_id, lease_seconds, now, busy),
            durable=False,
        )

    async def add_deliveries(
        self, event_id: str, destinations: Iterable[str], *, new_message: bool = False
    ) -> list[str]:
        names = list(destinations)  # once: a transaction may be run again
        now = time.time()
        return await self._run(
            "cannot add deliveries",
            lambda tx: outbox.add_deliveries(tx, event_id, names, now, new_message=new_message),
        )

    async def prune(
        self,
        cutoff: datetime,
        *,
        batch: int = 500,
        dry_run: bool = False,
        progress: Callable[[Pruned], None] | None = None,
    ) -> Pruned:
        if dry_run:
            async with self._read() as tx:
                return await pruning.count(tx, cutoff)
        total, since = Pruned(), pruning.Position()
        while True:
            done, since = await self._run(
                "cannot prune",
                functools.partial(
                    pruning.prune_batch, cutoff_time=cutoff, batch=batch, since=since
                ),
            )
            total += done
            if progress is not None:
                progress(done)
            if done == Pruned():
                return total
            await asyncio.sleep(0.01)  # let waiting commits in between batches

    async def claim_tasks(
        self, sources: Collection[str], worker_id: str, limit: int, lease: float, now: float
    ) -> tuple[list[Task], float | None]:
        if not sources:
            return [], None
        return await self._run(
            "cannot claim tasks", lambda tx: tasks.claim(tx, sources, worker_id, limit, lease, now)
        )

    async def claim_files(
        self, worker_id: str, limit: int, lease_seconds: float, now: float
    ) -> tuple[list[KeptFile], float | None]:
        return await self._run(
            "cannot claim result files",
            lambda tx: kept.claim(tx, worker_id, limit, lease_seconds, now),
            durable=False,
        )

    async def forget_files(self, files: Sequence[tuple[str, int]]) -> None:
        files = list(files)  # once: a transaction may be run again
        now = time.time()
        await self._run("cannot forget pruned result files", lambda tx: kept.forget(tx, now, files))

    async def release_files(self, worker_id: str) -> None:
        await self._run("cannot release result files", lambda tx: kept.release(tx, worker_id))

    async def set_meta(self, key: str, value: str | None) -> None:
        await self._run(f"cannot write {key}", lambda tx: meta.put(tx, key, value))

    def export_rows(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        return transfer.export_rows(self._read)

    async def import_rows(self, table: str, found: Sequence[dict[str, Any]]) -> None:
        await self._run(
            f"cannot import into {table}", lambda tx: transfer.import_rows(tx, table, found)
        )


async def _finish(tx: Tx, outcomes: Sequence[Outcome], now: float) -> list[None]:
    """Record delivery attempts (:func:`.outbox.finish`); there is nothing to answer each."""
    await outbox.finish(tx, outcomes, now)
    return [None] * len(outcomes)


def reason(exc: BaseException) -> str:
    """What went wrong, in words: some drivers' errors have none (a timeout, say)."""
    if isinstance(exc, TimeoutError):
        return "the database did not answer in time"
    return str(exc) or type(exc).__name__
