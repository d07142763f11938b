"""The work beside answering requests: the delivery worker, the reconciler, the keeper of
result files and the batches' sweep, started and stopped together, woken by one call when a
commit makes deliveries due, tasks to track or files to keep."""

from __future__ import annotations

import asyncio

from receiver.batch_sweeper import INTERVAL, BatchSweeper
from receiver.config.settings import Settings
from receiver.delivery.worker import GRACE_PERIOD, SWEEP_INTERVAL, Worker
from receiver.keeping import Keeper, open_result_store, results_in_use
from receiver.observability.metrics import Metrics
from receiver.reconciler import Reconciler
from receiver.routing import Router
from receiver.store import Working


class Background:
    """The delivery worker, the reconciler, the keeper and the batches' sweep of one process."""

    def __init__(
        self,
        settings: Settings,
        store: Working,
        router: Router,
        *,
        metrics: Metrics | None = None,
        sweep_interval: float = SWEEP_INTERVAL,
        batch_interval: float = INTERVAL,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.sweep_interval = sweep_interval
        #: Started with the rest while results are kept, or files recorded (``results_in_use``).
        self.keeper: Keeper | None = None
        self.worker = Worker(
            store, settings.destinations, metrics=metrics, sweep_interval=sweep_interval
        )
        self.reconciler = Reconciler(
            store,
            settings.sources,
            router,
            worker_id=self.worker.id,
            metrics=metrics,
            sweep_interval=sweep_interval,
        )
        self.batches = BatchSweeper(store, router, wake=self.worker.wake, interval=batch_interval)

    def wake(self) -> None:
        """Look for due deliveries and tasks now (called when new ones are committed)."""
        self.worker.wake()
        self.reconciler.wake()
        if self.keeper is not None:
            self.keeper.wake()

    async def start(self) -> None:
        if await results_in_use(self.settings, self.store):
            self.keeper = Keeper(
                self.store,
                self.settings.results,
                await open_result_store(self.settings, self.store),
                worker_id=self.worker.id,
                released=self.worker.wake,
                metrics=self.metrics,
                sweep_interval=self.sweep_interval,
            )
            self.worker.prepare = self.keeper.prepare
        if self.worker.delivers or self.reconciler.enabled or self.keeper is not None:
            await self.store.listen(self.wake)  # else a wake-up finds nothing
        await self.worker.start()
        if self.keeper is not None:
            await self.keeper.start()
        if self.reconciler.enabled:
            await self.reconciler.start()
        await self.batches.start()

    async def stop(self, grace: float = GRACE_PERIOD) -> None:
        """Stop both; deliveries in flight get ``grace`` seconds (see :meth:`Worker.stop`)."""
        stopping = [self.worker.stop(grace), self.batches.stop()]
        if self.reconciler.enabled:
            stopping.append(self.reconciler.stop())
        if self.keeper is not None:
            stopping.append(self.keeper.stop())
        await asyncio.gather(*stopping)
