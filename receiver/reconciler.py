"""Recovering results whose callbacks never came, by asking the providers' status APIs.

A tracked task with no terminal event is checked ``reconcile_after`` its last callback (or its
registration), then at growing intervals up to hourly, until a terminal answer is stored as the
event a callback would have made (``"via": "poll"``, under the same idempotency key, so a late
callback is a duplicate), or ``reconcile_for`` runs out and the task is ``lost``. With
``confirm = true``, each terminal callback waits for the provider to agree before it is routed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx

from receiver.config.sources import SourceConfig
from receiver.errors import InvalidCallback, StoreError
from receiver.ids import new_id
from receiver.normalize import new_events
from receiver.observability.metrics import Metrics
from receiver.routing import Router
from receiver.sources import KINDS, KeyRejected, ProviderUnavailable, StatusAnswer
from receiver.states import TaskState
from receiver.store import NewEvent, Receipt, Reconciling, Task

logger = logging.getLogger("photohook.reconciler")

MAX_INTERVAL = 3600.0
REQUEST_TIMEOUT = 30.0
CONCURRENCY = 4
SWEEP_INTERVAL = 1.0
LEASE = REQUEST_TIMEOUT + 30.0


def key_fingerprint(source: SourceConfig) -> str:
    assert source.api_key is not None
    return hashlib.sha256(source.api_key.reveal().encode()).hexdigest()[:16]


class Reconciler:
    """Checks due tasks with their provider, a few at a time."""

    def __init__(
        self,
        store: Reconciling,
        sources: Mapping[str, SourceConfig],
        router: Router,
        *,
        worker_id: str,
        metrics: Metrics | None = None,
        sweep_interval: float = SWEEP_INTERVAL,
    ) -> None:
        self._store = store
        self._sources = {name: s for name, s in sources.items() if s.tracking is not None}
        self._router = router
        self._worker_id = worker_id
        self._metrics = metrics
        self._sweep_interval = sweep_interval
        self._rejected: set[str] = set()
        self._client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT, trust_env=False)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._sources)

    async def start(self) -> None:
        for name, source in self._sources.items():
            if await self._store.get_meta(rejected_key(name)) == key_fingerprint(source):
                self._rejected.add(name)
                logger.error("the %s API key was rejected before; change it to reconcile", name)
        self._task = asyncio.create_task(self._run(), name="photohook-reconciler")
        logger.info("reconciling tasks of %s with their providers", ", ".join(self._sources))

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self._client.aclose()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            timeout = self._sweep_interval
            try:
                sources = [name for name in self._sources if name not in self._rejected]
                tasks, next_due = await self._store.claim_tasks(
                    sources, self._worker_id, CONCURRENCY, LEASE, time.time()
                )
                if tasks:
                    await asyncio.gather(*(self._check(task) for task in tasks))
                    timeout = 0
                elif next_due is not None:
                    timeout = min(max(next_due - time.time(), 0.005), timeout)
            except Exception:
                logger.exception("the reconciler failed; trying again")
            if timeout:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _check(self, task: Task) -> None:
        source = self._sources[task.source]
        now = time.time()
        if task.state == TaskState.TRACKED and now >= task.expires_at:
            logger.warning(
                "task %s of %s is lost: no result within reconcile_for", task.task_id, task.source
            )
            await self._finish(task, TaskState.LOST, error="no result within reconcile_for")
            return
        assert source.api_key is not None
        try:
            answer = await KINDS[source.kind].fetch_status(
                self._client, source.api_base_url, source.api_key.reveal(), task.task_id
            )
        except KeyRejected as exc:
            await self._key_rejected(source, task, str(exc))
            return
        except ProviderUnavailable as exc:
            self._count(task.source, "unavailable")
            await self._finish(task, task.state, next_check_at=self._later(task), error=str(exc))
            return
        try:
            events = self._events(source, answer)
        except InvalidCallback as exc:
            self._count(task.source, "invalid")
            error = f"the provider's answer does not parse: {exc.message}"
            await self._finish(task, task.state, next_check_at=self._later(task), error=error)
            return
        if task.state == TaskState.CONFIRMING:
            await self._confirm(task, events)
            return
        terminal = [e for e in events if e.terminal and e.event.task_id == task.task_id]
        if not terminal:
            self._count(task.source, "waiting" if answer.document else "unknown")
            unknown = None if answer.document else "the provider does not know this task (yet)"
            await self._finish(
                task, TaskState.TRACKED, next_check_at=self._later(task), error=unknown
            )
            return
        receipt = _receipt(task.source, answer, terminal, self._router)
        stored = await self._store.store(receipt)
        self._count(task.source, "recovered" if not stored.duplicate else "already_stored")
        if not stored.duplicate:
            logger.info(
                "recovered %s of %s from the provider: %s",
                task.task_id,
                task.source,
                ", ".join(stored.new_event_ids),
            )
        await self._finish(task, TaskState.DONE)

    def _events(self, source: SourceConfig, answer: StatusAnswer) -> list[NewEvent]:
        if answer.document is None:
            return []
        kind = KINDS[source.kind]
        return list(
            new_events(
                kind.parse(answer.document),
                source=source.name,
                kind=kind,
                ranks=kind.status_rank,
                router=self._router,
                tracking=source.tracking,
                keep_results=source.keep_results,
                payload=answer.document,
                received_at=datetime.now(UTC),
                via="poll",
                batching=source.batching,
            )
        )

    async def _confirm(self, task: Task, events: list[NewEvent]) -> None:
        callback = await self._store.get_event(task.event_id) if task.event_id else None
        answer = next((e.event for e in events if e.event.task_id == task.task_id), None)
        problem = None
        if callback is None:
            problem = "the event to confirm is gone"
        elif answer is None:
            problem = "the provider does not know this task"
        elif answer.status != callback.status:
            problem = f"the provider says the task is {answer.status}, not {callback.status}"
        elif set(answer.result_urls) != set(callback.result_urls):
            problem = "the provider's result URLs differ from the callback's"
        if problem is None:
            self._count(task.source, "confirmed")
            await self._finish(task, TaskState.DONE, confirmed=True)
            return
        logger.warning(
            "callback for %s of %s is unconfirmed: %s", task.task_id, task.source, problem
        )
        self._count(task.source, "unconfirmed")
        await self._finish(task, TaskState.UNCONFIRMED, error=problem, confirmed=False)

    async def _key_rejected(self, source: SourceConfig, task: Task, error: str) -> None:
        if source.name in self._rejected:  # another check of the same batch reported it
            await self._finish(task, task.state, next_check_at=time.time(), error=error)
            return
        self._rejected.add(source.name)
        self._count(source.name, "key_rejected")
        logger.error(
            "%s rejected the API key of source %s (%s); polling it stops until the key changes",
            source.kind,
            source.name,
            error,
        )
        await self._store.set_meta(rejected_key(source.name), key_fingerprint(source))
        await self._finish(task, task.state, next_check_at=time.time(), error=error)

    def _later(self, task: Task) -> float:
        after = self._sources[task.source].reconcile_after
        delay: float = min(after * 2.0 ** min(task.checks, 20), max(after, MAX_INTERVAL))
        return time.time() + delay

    async def _finish(
        self,
        task: Task,
        state: str,
        *,
        next_check_at: float | None = None,
        error: str | None = None,
        confirmed: bool | None = None,
    ) -> None:
        try:
            await self._store.finish_task(
                task,
                self._worker_id,
                state=state,
                next_check_at=next_check_at,
                error=error,
                confirmed=confirmed,
            )
        except StoreError as exc:
            logger.error("cannot record the check of %s: %s", task.task_id, exc)

    def _count(self, source: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.reconciled(source, outcome)


def rejected_key(source: str) -> str:
    return f"reconciler.key_rejected.{source}"


def _receipt(source: str, answer: StatusAnswer, events: list[NewEvent], router: Router) -> Receipt:
    return Receipt(
        id=new_id("rcv"),
        source=source,
        received_at=events[0].event.received_at,
        peer=None,
        client=None,
        headers=b"[]",
        body=answer.body,
        body_sha256=hashlib.sha256(answer.body).digest(),
        events=tuple(events),
        via="poll",
        route=router.destinations,
    )
