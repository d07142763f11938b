"""Retention: deleting what is older than ``[server] retention``, a little at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from receiver.errors import StoreError
from receiver.store import Pruned, Retention

logger = logging.getLogger("photohook.retention")

#: Seconds between pruning runs.
INTERVAL = 600.0


async def prune_old(
    store: Retention,
    retention: float,
    *,
    dry_run: bool = False,
    progress: Callable[[Pruned], None] | None = None,
) -> Pruned:
    """Delete (or count) what was received more than ``retention`` seconds ago; ``progress``
    is given each batch's deletions."""
    cutoff = datetime.now(UTC) - timedelta(seconds=retention)
    return await store.prune(cutoff, dry_run=dry_run, progress=progress)


async def prune_forever(store: Retention, retention: float, *, interval: float = INTERVAL) -> None:
    """Prune every ``interval`` seconds until cancelled. Each batch is a short transaction of its
    own, so ingest never waits long behind it; events with unfinished deliveries are kept."""
    while True:
        try:
            pruned = await prune_old(store, retention)
        except StoreError as exc:
            logger.error("pruning failed: %s", exc)
        else:
            if pruned != Pruned():
                files = f", {pruned.files} kept result files" if pruned.files else ""
                logger.info(
                    "pruned %d events, %d requests, %d deliveries, %d attempts, %d tasks, "
                    "%d rejected requests%s",
                    pruned.events,
                    pruned.receipts,
                    pruned.deliveries,
                    pruned.attempts,
                    pruned.tasks,
                    pruned.rejected,
                    files,
                )
        await asyncio.sleep(interval)
