"""The store both engines share: every operation written once, as SQL over a :class:`Tx`.

An engine supplies connections and transactions (:meth:`SQLStore._transaction` and
:meth:`SQLStore._reading`), its migrations, and the exceptions its driver raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..errors import StoreError
from ..events import Event, format_time
from ..tokens import generate_key
from . import outbox, pruning, queries, tasks, writes
from .groupcommit import GroupCommit
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
from .tx import Tx


class SQLStore:
    """A :class:`~receiver.store.Store` over SQL; subclassed once per engine."""

    #: The exceptions the engine's driver raises for database errors.
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, *, max_batch: int = 256) -> None:
        self._commits: GroupCommit[Receipt, Stored] = GroupCommit(
            self._write_batch, max_batch=max_batch
        )
        self._outcomes: GroupCommit[Outcome, None] = GroupCommit(
            self._write_outcomes, max_batch=max_batch
        )

    # What each engine provides.

    async def _connect(self, *, migrate: bool) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        raise NotImplementedError

    def _reading(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        raise NotImplementedError

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` when another process creates due deliveries (where the engine can)."""

    # The Store interface.

    async def open(self, *, migrate: bool = True) -> None:
        try:
            await self._connect(migrate=migrate)
        except BaseException:
            await self._disconnect()
            raise
        self._commits.start()
        self._outcomes.start()

    async def close(self) -> None:
        await self._commits.stop()
        await self._outcomes.stop()
        await self._disconnect()

    @contextlib.asynccontextmanager
    async def _write(self, doing: str) -> AsyncIterator[Tx]:
        try:
            async with self._transaction() as tx:
                yield tx
        except self.errors as exc:
            raise StoreError(f"{doing}: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        try:
            async with self._reading() as tx:
                yield tx
        except self.errors as exc:
            raise StoreError(f"cannot read the database: {exc}") from exc

    async def store(self, receipt: Receipt) -> Stored:
        return await self._commits.submit(receipt)

    async def _write_batch(self, receipts: Sequence[Receipt]) -> list[Stored]:
        async with self._write("could not store the callback") as tx:
            return await writes.write_batch(tx, receipts, time.time())

    async def check_writable(self) -> None:
        async with self._write("the database is not writable") as tx:
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES ('ready_probe', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (format_time(datetime.now(UTC)),),
            )

    async def url_token_key(self) -> str:
        async with self._write("cannot read the URL token key") as tx:
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES ('url_token_key', ?)"
                " ON CONFLICT (key) DO NOTHING",
                (generate_key(),),
            )
            [(key,)] = await tx.fetch("SELECT value FROM meta WHERE key = 'url_token_key'")
        return str(key)

    async def list_events(self, query: EventQuery) -> list[Event]:
        async with self._read() as tx:
            return await queries.list_events(tx, query)

    async def get_event(self, event_id: str) -> Event | None:
        async with self._read() as tx:
            return await queries.get_event(tx, event_id)

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
        async with self._write("cannot record the destinations") as tx:
            await outbox.sync_destinations(tx, names, time.time())

    async def claim(
        self, limits: Mapping[str, int], worker_id: str, lease_seconds: float, now: float
    ) -> tuple[list[Claim], float | None]:
        async with self._write("cannot claim deliveries") as tx:
            return await outbox.claim(tx, limits, worker_id, lease_seconds, now)

    async def finish(self, outcome: Outcome) -> None:
        await self._outcomes.submit(outcome)

    async def _write_outcomes(self, outcomes: Sequence[Outcome]) -> list[None]:
        async with self._write("cannot record a delivery attempt") as tx:
            await outbox.finish(tx, outcomes, time.time())
        return [None] * len(outcomes)

    async def add_deliveries(self, event_id: str, destinations: Iterable[str]) -> list[str]:
        async with self._write("cannot add deliveries") as tx:
            return await outbox.add_deliveries(tx, event_id, destinations, time.time())

    async def requeue(
        self,
        *,
        delivery_id: str | None = None,
        destination: str | None = None,
        event_id: str | None = None,
    ) -> int:
        async with self._write("cannot requeue deliveries") as tx:
            return await outbox.requeue(
                tx,
                time.time(),
                delivery_id=delivery_id,
                destination=destination,
                event_id=event_id,
            )

    async def set_destination_state(self, name: str, state: str, reason: str | None) -> bool:
        async with self._write("cannot change the destination") as tx:
            return await outbox.set_destination_state(tx, name, state, reason, time.time())

    async def destination_statuses(self, now: float) -> list[DestinationStatus]:
        async with self._read() as tx:
            return await outbox.destination_statuses(tx, now)

    async def prune(self, cutoff: datetime, *, batch: int = 500, dry_run: bool = False) -> Pruned:
        text = format_time(cutoff)
        if dry_run:
            async with self._read() as tx:
                return await pruning.count(tx, text)
        total = Pruned()
        while True:
            async with self._write("cannot prune") as tx:
                done = await pruning.prune_batch(tx, text, batch)
            total += done
            if done == Pruned():
                return total
            await asyncio.sleep(0.01)  # let waiting commits in between batches

    async def track_task(
        self, source: str, task_id: str, business_id: str | None, tracking: Tracking, now: float
    ) -> Task:
        async with self._write("cannot track the task") as tx:
            return await tasks.track(tx, source, task_id, business_id, tracking, now)

    async def claim_tasks(
        self, sources: Collection[str], worker_id: str, limit: int, lease: float, now: float
    ) -> tuple[list[Task], float | None]:
        if not sources:
            return [], None
        async with self._write("cannot claim tasks") as tx:
            return await tasks.claim(tx, sources, worker_id, limit, lease, now)

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
        async with self._write("cannot record the task") as tx:
            await tasks.finish(
                tx,
                task,
                worker_id,
                time.time(),
                state=state,
                next_check_at=next_check_at,
                error=error,
                confirmed=confirmed,
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

    async def set_meta(self, key: str, value: str | None) -> None:
        async with self._write(f"cannot write {key}") as tx:
            if value is None:
                await tx.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                await tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
