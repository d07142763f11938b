"""The work beside answering requests: the delivery worker and the reconciler, started and
stopped together, woken by one call when a commit makes deliveries due or tasks to track."""

from __future__ import annotations

import asyncio

from receiver.config.settings import Settings
from receiver.delivery.worker import GRACE_PERIOD, SWEEP_INTERVAL, Worker
from receiver.observability.metrics import Metrics
from receiver.reconciler import Reconciler
from receiver.routing import Router
from receiver.store import Store


class Background:
    """The delivery worker and the reconciler of one process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        router: Router,
        *,
        metrics: Metrics | None = None,
        sweep_interval: float = SWEEP_INTERVAL,
    ) -> None:
        self.store = store
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

    def wake(self) -> None:
        """Look for due deliveries and tasks now (called when new ones are committed)."""
        self.worker.wake()
        self.reconciler.wake()

    async def start(self) -> None:
        if self.worker.delivers or self.reconciler.enabled:  # else a wake-up finds nothing
            await self.store.listen(self.wake)
        await self.worker.start()
        if self.reconciler.enabled:
            await self.reconciler.start()

    async def stop(self, grace: float = GRACE_PERIOD) -> None:
        """Stop both; deliveries in flight get ``grace`` seconds (see :meth:`Worker.stop`)."""
        stopping = [self.worker.stop(grace)]
        if self.reconciler.enabled:
            stopping.append(self.reconciler.stop())
        await asyncio.gather(*stopping)
