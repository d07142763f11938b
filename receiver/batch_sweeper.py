"""The batches' sweep: expiring open batches past their deadline, each with its one
``batch.expired`` event, and completing any whose last final status was stored without
reaching it (see :func:`receiver.store.batches.sweep`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from receiver.errors import StoreError
from receiver.routing import Router
from receiver.store import Batches

logger = logging.getLogger("photohook.batches")

#: Seconds between sweeps: how late past its deadline a batch may expire.
INTERVAL = 5.0


class BatchSweeper:
    """Sweeps the batches every ``interval`` seconds; ``wake`` is called when it stored events
    (their deliveries are due)."""

    def __init__(
        self,
        store: Batches,
        router: Router,
        *,
        wake: Callable[[], None],
        interval: float = INTERVAL,
    ) -> None:
        self._store = store
        self._router = router
        self._wake = wake
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="photohook-batches")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def sweep(self) -> list[str]:
        """One sweep; the ids of the batch events it stored."""
        stored = await self._store.sweep_batches(self._router.destinations)
        if stored:
            logger.info("batch events stored by the sweep: %s", ", ".join(stored))
            self._wake()
        return stored

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.sweep()
            except StoreError as exc:
                logger.error("the batches' sweep failed: %s", exc)
            except Exception:
                logger.exception("the batches' sweep failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
