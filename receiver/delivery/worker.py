"""The delivery worker: claims due deliveries with a lease, sends them, records every attempt.

Each destination has a lane of its own (a concurrency limit and, optionally, a rate limit), so a
slow or failing destination never delays the others. A new delivery is picked up at once through
:meth:`Worker.wake`; a periodic sweep catches retries that fall due, deliveries created by other
processes, and leases that expired when a worker died.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from receiver.context import DeliveryContext
from receiver.delivery.senders import Result, Sender, not_sent, senders_for
from receiver.destinations import Destination
from receiver.errors import StoreError
from receiver.events import Event
from receiver.ids import ulid
from receiver.observability import tracing
from receiver.observability.logs import log_often
from receiver.observability.metrics import Metrics
from receiver.states import DeliveryState
from receiver.store import Claim, Outbox, Outcome

logger = logging.getLogger("photohook.worker")

#: Seconds between sweeps for work this process was not told about.
SWEEP_INTERVAL = 1.0
#: Seconds that deliveries in flight get to finish when the worker stops.
GRACE_PERIOD = 10.0
#: How long a lease outlives a claim's longest wait (its turn under the rate limit, the
#: attempt's timeout).
LEASE_MARGIN = 5.0


class _RateLimit:
    """Spaces attempts at least ``1 / rate`` seconds apart."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


class _Lane:
    """One destination's deliveries, at most ``max_in_flight`` under way: leased and not yet
    answered. The store leases no more than that across all workers. Each place in the lane has
    a sender of its own (an HTTP destination's keeps its connection). A delivery whose answer
    has come frees its place at once, while its outcome is still being committed, so the next
    one is claimed and sent without waiting for that commit."""

    def __init__(self, worker: Worker, destination: Destination) -> None:
        self.worker = worker
        self.destination = destination
        self.senders = senders_for(destination, destination.max_in_flight)
        self._free = collections.deque(self.senders)
        self.rate = _RateLimit(destination.rate_limit) if destination.rate_limit else None
        self.tasks: set[asyncio.Task[None]] = set()  # until each outcome is recorded

    @property
    def under_way(self) -> int:
        """Deliveries claimed and not yet answered."""
        return len(self.senders) - len(self._free)

    def room(self) -> int:
        """How many more deliveries may be claimed."""
        return len(self._free)

    def start(self, claim: Claim) -> None:
        sender = self._free.popleft()  # a claim never exceeds the room
        task = asyncio.create_task(
            self._deliver(claim, sender), name=f"deliver-{claim.delivery.id}"
        )
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.worker.wake()  # a later event of the task may be unblocked

    async def _deliver(self, claim: Claim, sender: Sender) -> None:
        try:
            if self.rate is not None:
                await self.rate.wait()
            delivery = claim.delivery
            context = DeliveryContext(
                delivery_id=delivery.id,
                attempt=delivery.attempts + 1,
                destination=delivery.destination,
                message_id=delivery.message_id or claim.event.id,
            )
            event, result = claim.event, None
            if self.worker.prepare is not None:
                try:
                    event = await self.worker.prepare(event)  # stable URLs, made as it is sent
                except Exception as exc:  # an attempt that failed: tried again, never lost
                    logger.exception("cannot make the links of %s's kept files", event.id)
                    result = not_sent(
                        f"cannot make the links of its kept files: {type(exc).__name__}"
                    )
            if result is None and tracing.enabled():
                result = await self._traced(claim, event, sender, context)
            elif result is None:
                result = await sender.send(event, context)
        finally:
            self._free.append(sender)
            self.worker.wake()  # room to claim another
        outcome = self._outcome(claim, result)
        self._log(claim, outcome)
        if self.worker.metrics is not None:
            seconds = result.attempt.duration_ms / 1000
            self.worker.metrics.attempt(self.destination.name, outcome.state, seconds)
        try:
            await self.worker.store.finish(outcome)
        except StoreError as exc:
            # The lease runs out and the delivery is tried again: at least once, never lost.
            logger.error("cannot record delivery %s: %s", claim.delivery.id, exc)

    async def _traced(
        self, claim: Claim, event: Event, sender: Sender, context: DeliveryContext
    ) -> Result:
        """The attempt, as a span in the trace of the callback that brought its event."""
        attributes = {
            "photohook.source": event.source,
            "photohook.event.id": event.id,
            "photohook.event.type": event.type,
            "photohook.task.id": event.task_id,
            "photohook.destination": context.destination,
            "photohook.attempt": context.attempt,
        }
        with tracing.continued("photohook.delivery", claim.trace_context, attributes) as span:
            result = await sender.send(event, context)
            if span is not None:
                span.set_attributes(_span_outcome(result))
        return result

    def _log(self, claim: Claim, outcome: Outcome) -> None:
        """An attempt's line: INFO, written with the others of its moment, whatever came of it
        but the end of the delivery's hopes (dead) or of its destination's (disabled): those are
        warnings, written at once."""
        attempt = outcome.attempt
        fields = {
            "source": claim.event.source,
            "event_id": claim.event.id,
            "task_id": claim.event.task_id,
            "delivery_id": claim.delivery.id,
            "destination": self.destination.name,
            "attempt": claim.delivery.attempts + 1,
            "outcome": outcome.state,
            "http_status": attempt.status_code,
            "duration_ms": round(attempt.duration_ms, 3),
            "error": attempt.error,
        }
        about = (
            f"delivery {claim.delivery.id} of {claim.event.id} (task {claim.event.task_id}) "
            f"to {self.destination.name}"
        )
        if outcome.disable_destination is not None:
            logger.warning(
                "destination %s disabled: %s; its deliveries are held until "
                "'photohook resume %s' (%s)",
                self.destination.name,
                outcome.disable_destination,
                self.destination.name,
                about,
                extra=fields,
            )
        elif outcome.state == DeliveryState.DEAD:
            logger.warning(
                "%s is dead after %d attempts: %s",
                about,
                claim.delivery.attempts + 1,
                attempt.error,
                extra=fields,
            )
        else:
            error = f" ({attempt.error})" if attempt.error else ""
            log_often(logger, f"{about}: {outcome.state}{error}", fields)

    def _outcome(self, claim: Claim, result: Result) -> Outcome:
        state, next_attempt_at, disable = DeliveryState.DELIVERED, None, None
        if result.skipped:
            state = DeliveryState.SKIPPED
        elif result.gone:
            state, disable = DeliveryState.HELD, f"{self.destination.target} answered 410 Gone"
        elif not result.attempt.ok:
            delay = self.destination.retry.next_delay(claim.delivery.tries + 1, result.retry_after)
            if delay is None:
                state = DeliveryState.DEAD
            else:
                state, next_attempt_at = DeliveryState.RETRYING, time.time() + delay
        return Outcome(
            claim.delivery.id, self.worker.id, result.attempt, state, next_attempt_at, disable
        )


class Worker:
    """Delivers the events routed to ``destinations`` until stopped."""

    def __init__(
        self,
        store: Outbox,
        destinations: Mapping[str, Destination],
        *,
        metrics: Metrics | None = None,
        sweep_interval: float = SWEEP_INTERVAL,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.id = f"{socket.gethostname()}:{os.getpid()}:{ulid()[-6:]}"
        self._sweep_interval = sweep_interval
        self._lanes = {name: _Lane(self, d) for name, d in destinations.items()}
        # Twice the longest a claim can take (its turn under the rate limit, then the attempt's
        # timeout): its outcome must be committed before the lease runs out, or another worker
        # sends it again.
        self._lease = LEASE_MARGIN + 2 * max(
            (
                d.timeout + (d.max_in_flight / d.rate_limit if d.rate_limit else 0)
                for d in destinations.values()
            ),
            default=0,
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        #: Gives an event's kept result files their stable URLs (set by the keeper).
        self.prepare: Callable[[Event], Awaitable[Event]] | None = None

    @property
    def delivers(self) -> bool:
        """Whether any destination is configured (else no delivery can ever be due)."""
        return bool(self._lanes)

    def wake(self) -> None:
        """Look for due deliveries now (called when new ones are committed)."""
        self._wake.set()

    async def start(self) -> None:
        await self.store.sync_destinations(self._lanes)
        self._task = asyncio.create_task(self._run(), name="photohook-worker")
        logger.info("worker %s delivering to %s", self.id, ", ".join(self._lanes) or "nothing")

    async def stop(self, grace: float = GRACE_PERIOD) -> None:
        """Stop claiming; give deliveries in flight ``grace`` seconds, then leave the rest leased
        (their leases expire and another worker sends them again)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        in_flight = [task for lane in self._lanes.values() for task in lane.tasks]
        if in_flight:
            _, pending = await asyncio.wait(in_flight, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                # Let them unwind before what they use is closed under them.
                await asyncio.wait(pending, timeout=grace)
                logger.warning("left %d deliveries in flight to be retried", len(pending))
        for lane in self._lanes.values():
            for sender in lane.senders:
                try:
                    await sender.aclose()
                except Exception:
                    logger.warning(
                        "closing a sender of %s failed", lane.destination.name, exc_info=True
                    )

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                timeout = await self._claim_and_start()
            except Exception:
                # Never let one bad cycle stop deliveries for good; the next sweep tries again.
                logger.exception("the delivery loop failed; trying again")
                timeout = self._sweep_interval
            if timeout:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _claim_and_start(self) -> float:
        """Claim and start what is due; return how long to wait (0: look again at once)."""
        lanes = {name: lane for name, lane in self._lanes.items() if lane.room() > 0}
        if not lanes:
            return self._sweep_interval  # every lane is full; an answered delivery wakes us
        limits = {name: lane.destination.max_in_flight for name, lane in lanes.items()}
        busy = {name: lane.under_way for name, lane in lanes.items()}
        try:
            claims, next_due = await self.store.claim(
                limits, self.id, self._lease, time.time(), busy
            )
        except StoreError as exc:
            logger.error("%s", exc)  # it says what it was doing
            return self._sweep_interval
        for claim in claims:
            self._lanes[claim.delivery.destination].start(claim)
        if claims:
            return 0
        if next_due is None:
            return self._sweep_interval
        return min(max(next_due - time.time(), 0.005), self._sweep_interval)


def _span_outcome(result: Result) -> dict[str, Any]:
    attempt = result.attempt
    found: dict[str, Any] = {
        "photohook.outcome": "skipped" if result.skipped else ("ok" if attempt.ok else "failed")
    }
    if attempt.status_code is not None:
        found["http.response.status_code"] = attempt.status_code
    if not attempt.ok:  # the error's kind, never its text (which may name a host)
        found["error.type"] = (attempt.error or "failed").split(":", 1)[0]
    return found
