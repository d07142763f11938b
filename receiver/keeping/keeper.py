"""The keeper: fetches the result files of events with ``keep_results`` into the result store,
a few at a time, each leased so that no two processes fetch one file at once. A failed fetch is
tried again on ``[results] retry_schedule``; once it runs out (or trying again cannot help) the
file is missing. When an event's last file is kept or missing, its deliveries go out. It also
deletes the copies of files whose events retention pruned."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from receiver.config.results import ResultsConfig
from receiver.errors import FetchFailed, ResultStoreError, StoreError
from receiver.events import Event, KeptResult
from receiver.keeping.download import Fetcher
from receiver.keeping.stores import ResultStore, storage_key
from receiver.observability.metrics import Metrics
from receiver.states import KeptState
from receiver.store import FileOutcome, Keeping, KeptFile
from receiver.store.batches import SOURCE as BATCHES
from receiver.store.rows import kept_of

logger = logging.getLogger("photohook.keeper")

SWEEP_INTERVAL = 1.0
#: Seconds between tries while the result store itself fails.
STORE_RETRY_DELAY = 60.0
#: How long a lease outlives a fetch's timeout (the upload to the store, the commit).
LEASE_MARGIN = 60.0


async def kept_results(
    store: Keeping, results: ResultStore, events: Sequence[Event]
) -> dict[str, tuple[KeptResult, ...]]:
    """The kept (or missing) result files of these events, by event id, with stable URLs made
    now: what a delivery of each would carry as ``kept_results`` (events with none are left
    out). For anything that reports on events after the fact, such as a batch's summary."""
    files = await store.kept_files([event.id for event in events])
    found = {}
    for event in events:
        if event.id in files:
            kept = kept_of(files[event.id])
            found[event.id] = tuple(_linked(results, event.id, k) for k in kept)
    return found


def _linked(results: ResultStore, event_id: str, kept: KeptResult) -> KeptResult:
    if kept.status != KeptState.KEPT or kept.key is None:
        return kept
    return replace(kept, kept_url=results.link(event_id, kept.position, kept.key))


class Keeper:
    """Keeps the result files of one process's share of events."""

    def __init__(
        self,
        store: Keeping,
        config: ResultsConfig,
        results: ResultStore,
        *,
        worker_id: str,
        released: Callable[[], None] = lambda: None,
        fetcher: Fetcher | None = None,
        metrics: Metrics | None = None,
        sweep_interval: float = SWEEP_INTERVAL,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._config = config
        self.results = results
        self._worker_id = worker_id
        self._released = released
        self._fetcher = fetcher or Fetcher(
            max_bytes=config.max_bytes,
            timeout=config.timeout,
            allow_private=config.allow_private,
            writers=config.max_in_flight,
        )
        self._sweep_interval = sweep_interval
        self._lease = config.timeout * 2 + LEASE_MARGIN
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def prepare(self, event: Event) -> Event:
        """``event`` as it is sent: its kept files, and a batch's event each of its tasks' kept
        files, with stable URLs made now (presigned URLs and file tokens count their lifetime
        from when they are made)."""
        if event.kept_results:
            linked = tuple(_linked(self.results, event.id, kept) for kept in event.kept_results)
            event = replace(event, kept_results=linked)
        if event.source == BATCHES:
            event = await self._with_tasks_kept(event)
        return event

    async def _with_tasks_kept(self, event: Event) -> Event:
        tasks = event.payload.get("tasks")
        if not isinstance(tasks, list):
            return event
        ids = [task["event_id"] for task in tasks if task.get("event_id")]
        files = await self._store.kept_files(ids) if ids else {}
        if not files:
            return event
        listed = []
        for task in tasks:
            found = files.get(task.get("event_id") or "")
            if found:
                kept = (_linked(self.results, task["event_id"], k) for k in kept_of(found))
                task = task | {"kept_results": [k.to_dict() for k in kept]}
            listed.append(task)
        return replace(event, payload=event.payload | {"tasks": listed})

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="photohook-keeper")
        logger.info("keeping result files in the %s result store", self._config.store)

    async def stop(self) -> None:
        """Stop claiming; fetches under way are cancelled and their leases given up, so that the
        next keeper fetches them again at once (after a crash, when the leases run out)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        for task in self._in_flight:
            task.cancel()
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        try:
            await self._store.release_files(self._worker_id)
        except StoreError as exc:
            logger.warning("cannot give up the result files' leases: %s", exc)
        await self._fetcher.aclose()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            timeout = self._sweep_interval
            room = self._config.max_in_flight - len(self._in_flight)
            if room > 0:
                try:
                    files, next_due = await self._store.claim_files(
                        self._worker_id, room, self._lease, time.time()
                    )
                except StoreError as exc:
                    logger.error("%s", exc)
                    files, next_due = [], None
                except Exception:
                    logger.exception("the keeper failed; trying again")
                    files, next_due = [], None
                for file in files:
                    task = asyncio.create_task(self._one(file), name="photohook-keep")
                    self._in_flight.add(task)
                    task.add_done_callback(self._done)
                if files:
                    timeout = 0
                elif next_due is not None:
                    timeout = min(max(next_due - time.time(), 0.005), timeout)
            if timeout:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    async def _one(self, file: KeptFile) -> None:
        try:
            if file.state == KeptState.PRUNED:
                await self._forget(file)
            else:
                await self._keep(file)
        except StoreError as exc:
            # The lease runs out and the file is fetched again: its key is the same.
            logger.error(
                "cannot record result file %d of %s: %s", file.position, file.event_id, exc
            )
        except Exception as exc:
            # A fault of ours or a library's: tried again on the schedule, never held forever.
            logger.exception("keeping result file %d of %s failed", file.position, file.event_id)
            if file.state != KeptState.PRUNED:
                with contextlib.suppress(StoreError):
                    await self._failed(file, f"failed: {type(exc).__name__}", final=False)

    async def _keep(self, file: KeptFile) -> None:
        key = storage_key(file.event_id, file.position, file.url)
        started = time.perf_counter()
        try:
            download = await self._fetcher.fetch(file.url, self.results.incoming())
            await self.results.put(download.path, key, download.content_type)
        except FetchFailed as exc:
            await self._failed(file, exc.message, final=exc.final)
            return
        except ResultStoreError as exc:
            await self._store_failed(file, exc.message)
            return
        except OSError as exc:  # the store's folder for downloads (full disk, permissions)
            await self._store_failed(file, f"cannot write the download: {exc.strerror or exc}")
            return
        seconds = time.perf_counter() - started
        logger.info(
            "kept result file %d of %s: %d bytes in %.2fs",
            file.position,
            file.event_id,
            download.size,
            seconds,
            extra={"event_id": file.event_id, "bytes": download.size},
        )
        outcome = FileOutcome(
            file.event_id,
            file.position,
            self._worker_id,
            KeptState.KEPT,
            storage_key=key,
            size=download.size,
            content_type=download.content_type,
            sha256=download.sha256,
        )
        if self._metrics is not None:
            self._metrics.kept(KeptState.KEPT, self._config.store, download.size)
        if await self._store.finish_file(outcome):
            self._released()

    async def _failed(self, file: KeptFile, error: str, *, final: bool) -> None:
        delay = None if final else self._config.retry.next_delay(file.attempts + 1)
        if delay is None:
            logger.warning(
                "result file %d of %s is missing: %s; its event is delivered saying so",
                file.position,
                file.event_id,
                error,
                extra={"event_id": file.event_id},
            )
            outcome = FileOutcome(
                file.event_id, file.position, self._worker_id, KeptState.MISSING, error=error
            )
        else:
            logger.info(
                "result file %d of %s not kept yet (%s); trying again in %.0fs",
                file.position,
                file.event_id,
                error,
                delay,
            )
            outcome = FileOutcome(
                file.event_id,
                file.position,
                self._worker_id,
                KeptState.WAITING,
                next_attempt_at=time.time() + delay,
                error=error,
            )
        if self._metrics is not None:
            missing = outcome.state == KeptState.MISSING
            self._metrics.kept("missing" if missing else "retried", self._config.store)
        if await self._store.finish_file(outcome):
            self._released()

    async def _store_failed(self, file: KeptFile, error: str) -> None:
        """Our result store failed, not the provider: tried again every
        :data:`STORE_RETRY_DELAY` seconds, without using up the file's retry schedule, so an
        outage of the store never turns a file the provider serves into a missing one."""
        logger.error(
            "the result store cannot take result file %d of %s (%s); trying again in %.0fs",
            file.position,
            file.event_id,
            error,
            STORE_RETRY_DELAY,
            extra={"event_id": file.event_id},
        )
        outcome = FileOutcome(
            file.event_id,
            file.position,
            self._worker_id,
            KeptState.WAITING,
            next_attempt_at=time.time() + STORE_RETRY_DELAY,
            error=error,
            counted=False,
        )
        if self._metrics is not None:
            self._metrics.kept("retried", self._config.store)
        await self._store.finish_file(outcome)

    async def _forget(self, file: KeptFile) -> None:
        if file.storage_key is not None:
            await self.results.delete(file.storage_key)
        await self._store.forget_files([(file.event_id, file.position)])
