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
import random
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import UTC, datetime
from typing import Any, TypeVar

from receiver.errors import StoreError, StoreUnavailable
from receiver.events import Event, format_time
from receiver.store import activity, outbox, pruning, queries, rejections, tasks, transfer, writes
from receiver.store.groupcommit import Committer, GroupCommit
from receiver.store.migrations import SchemaChange
from receiver.store.records import (
    AttemptRecord,
    Claim,
    Count,
    Delivery,
    DeliveryQuery,
    DestinationStatus,
    EventDetail,
    EventQuery,
    Outcome,
    Pruned,
    Receipt,
    RejectedQuery,
    RejectedRequest,
    Rejection,
    Stored,
    Task,
    Tracking,
)
from receiver.store.tx import Tx
from receiver.tokens import generate_key

T = TypeVar("T")
Item = TypeVar("Item")

#: Writes a batch of items in a transaction, at a time given once for the batch; what each did.
BatchWork = Callable[[Tx, Sequence[Item], float], Awaitable[Sequence[T]]]

_ATTEMPTS = 3


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

    async def list_rejected(self, query: RejectedQuery) -> list[RejectedRequest]:
        async with self._read() as tx:
            return await rejections.list_rejected(tx, query)

    async def get_rejected(self, rejected_id: str) -> RejectedRequest | None:
        async with self._read() as tx:
            return await rejections.get_rejected(tx, rejected_id)

    async def accept_rejected(self, rejected_id: str, receipt: Receipt) -> Stored:
        now = time.time()
        return await self._run(
            "cannot store the retried request",
            lambda tx: rejections.accept(tx, rejected_id, receipt, now),
        )

    async def refuse_rejected(self, rejected_id: str, error: dict[str, Any]) -> None:
        now = time.time()
        await self._run(
            "cannot record the retry", lambda tx: rejections.refuse(tx, rejected_id, error, now)
        )

    async def check_writable(self) -> None:
        await self._run(
            "the database is not writable",
            lambda tx: _set_meta(tx, "ready_probe", format_time(datetime.now(UTC))),
        )

    async def url_token_key(self) -> str:
        async def work(tx: Tx) -> str:
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES ('url_token_key', ?)"
                " ON CONFLICT (key) DO NOTHING",
                (generate_key(),),
            )
            [(key,)] = await tx.fetch("SELECT value FROM meta WHERE key = 'url_token_key'")
            return str(key)

        return await self._run("cannot read the URL token key", work)

    async def list_events(self, query: EventQuery) -> list[Event]:
        async with self._read() as tx:
            return await queries.list_events(tx, query)

    async def get_event(self, event_id: str) -> Event | None:
        async with self._read() as tx:
            return await queries.get_event(tx, event_id)

    async def events_by_id(self, event_ids: Sequence[str]) -> dict[str, Event]:
        async with self._read() as tx:
            return await queries.events_by_id(tx, event_ids)

    async def deliveries_of(self, event_ids: Sequence[str]) -> dict[str, list[Delivery]]:
        async with self._read() as tx:
            return await queries.deliveries_of(tx, event_ids)

    async def callback_counts(self, since: float, bucket_seconds: int) -> list[Count]:
        async with self._read() as tx:
            return await activity.callbacks(tx, since, bucket_seconds)

    async def attempt_counts(self, since: float, bucket_seconds: int) -> list[Count]:
        async with self._read() as tx:
            return await activity.attempts(tx, since, bucket_seconds)

    async def event_detail(self, event_id: str) -> EventDetail | None:
        async with self._read() as tx:
            return await queries.event_detail(tx, event_id)

    async def list_deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        async with self._read() as tx:
            return await queries.list_deliveries(tx, query)

    async def attempts(self, delivery_ids: Sequence[str]) -> dict[str, list[AttemptRecord]]:
        async with self._read() as tx:
            return await queries.attempts(tx, delivery_ids)

    async def sync_destinations(self, names: Iterable[str]) -> None:
        names = list(names)
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

    async def finish(self, outcome: Outcome) -> None:
        await self._outcomes.submit(outcome)

    async def add_deliveries(
        self, event_id: str, destinations: Iterable[str], *, new_message: bool = False
    ) -> list[str]:
        names = list(destinations)
        now = time.time()
        return await self._run(
            "cannot add deliveries",
            lambda tx: outbox.add_deliveries(tx, event_id, names, now, new_message=new_message),
        )

    async def requeue(
        self,
        *,
        delivery_id: str | None = None,
        destination: str | None = None,
        event_id: str | None = None,
    ) -> int:
        now = time.time()
        return await self._run(
            "cannot requeue deliveries",
            lambda tx: outbox.requeue(
                tx, now, delivery_id=delivery_id, destination=destination, event_id=event_id
            ),
        )

    async def set_destination_state(self, name: str, state: str, reason: str | None) -> bool:
        now = time.time()
        return await self._run(
            "cannot change the destination",
            lambda tx: outbox.set_destination_state(tx, name, state, reason, now),
        )

    async def destination_statuses(self, now: float) -> list[DestinationStatus]:
        async with self._read() as tx:
            return await outbox.destination_statuses(tx, now)

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

    async def track_task(
        self, source: str, task_id: str, business_id: str | None, tracking: Tracking, now: float
    ) -> Task:
        return await self._run(
            "cannot track the task",
            lambda tx: tasks.track(tx, source, task_id, business_id, tracking, now),
        )

    async def claim_tasks(
        self, sources: Collection[str], worker_id: str, limit: int, lease: float, now: float
    ) -> tuple[list[Task], float | None]:
        if not sources:
            return [], None
        return await self._run(
            "cannot claim tasks", lambda tx: tasks.claim(tx, sources, worker_id, limit, lease, now)
        )

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
        await self._run(
            "cannot record the task",
            lambda tx: tasks.finish(
                tx,
                task,
                worker_id,
                now,
                state=state,
                next_check_at=next_check_at,
                error=error,
                confirmed=confirmed,
            ),
        )

    async def list_tasks(self, state: str | None = None, limit: int = 100) -> list[Task]:
        async with self._read() as tx:
            return await tasks.list_tasks(tx, state, limit)

    async def task_summary(self) -> dict[str, dict[str, Any]]:
        async with self._read() as tx:
            return await tasks.summary(tx)

    async def get_meta(self, key: str) -> str | None:
        async with self._read() as tx:
            found = await tx.fetch("SELECT value FROM meta WHERE key = ?", [key])
        return next((str(row[0]) for row in found), None)

    def export_rows(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        return transfer.export_rows(self._read)

    async def import_rows(self, table: str, found: Sequence[dict[str, Any]]) -> None:
        await self._run(
            f"cannot import into {table}", lambda tx: transfer.import_rows(tx, table, found)
        )

    async def table_counts(self) -> dict[str, int]:
        async with self._read() as tx:
            return await transfer.counts(tx)

    async def set_meta(self, key: str, value: str | None) -> None:
        await self._run(f"cannot write {key}", lambda tx: _set_meta(tx, key, value))


async def _finish(tx: Tx, outcomes: Sequence[Outcome], now: float) -> list[None]:
    """Record delivery attempts (:func:`.outbox.finish`); there is nothing to answer each."""
    await outbox.finish(tx, outcomes, now)
    return [None] * len(outcomes)


async def _set_meta(tx: Tx, key: str, value: str | None) -> None:
    if value is None:
        await tx.execute("DELETE FROM meta WHERE key = ?", (key,))
    else:
        await tx.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def reason(exc: BaseException) -> str:
    """What went wrong, in words: some drivers' errors have none (a timeout, say)."""
    if isinstance(exc, TimeoutError):
        return "the database did not answer in time"
    return str(exc) or type(exc).__name__
