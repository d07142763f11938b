"""Prometheus metrics (``GET /metrics``), one registry per application."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .store import Store

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
UNKNOWN_SOURCE = "(unknown)"


class Metrics:
    """What photohook counts. Labels are bounded: configured sources and destinations only."""

    def __init__(self, sources: Iterable[str], destinations: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sources = frozenset(sources)
        self.destinations = frozenset(destinations)
        self.callbacks = Counter(
            "photohook_callbacks",
            "Callbacks received, by source and outcome (accepted, duplicate, rejected).",
            ["source", "outcome", "reason"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "photohook_ingest_duration_seconds",
            "Time from a callback's arrival to its answer.",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "photohook_events", "Events stored, by type.", ["type"], registry=self.registry
        )
        self.deliveries = Counter(
            "photohook_delivery_attempts",
            "Delivery attempts, by destination and the state they left the delivery in.",
            ["destination", "outcome"],
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "photohook_delivery_attempt_duration_seconds",
            "Duration of delivery attempts.",
            ["destination"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "photohook_queue_depth",
            "Deliveries waiting (pending, retrying or held), by destination.",
            ["destination"],
            registry=self.registry,
        )
        self.oldest_pending = Gauge(
            "photohook_oldest_pending_seconds",
            "Age of the oldest waiting delivery, by destination.",
            ["destination"],
            registry=self.registry,
        )
        self.dead = Gauge(
            "photohook_dead_deliveries",
            "Dead deliveries, by destination.",
            ["destination"],
            registry=self.registry,
        )
        self.reconciler = Counter(
            "photohook_reconciler_checks",
            "Checks of tracked tasks with the provider, by source and outcome (recovered, "
            "waiting, unknown, unavailable, confirmed, unconfirmed, key_rejected, ...).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.disabled = Gauge(
            "photohook_destinations_disabled",
            "Destinations disabled (410 Gone) or paused.",
            ["state"],
            registry=self.registry,
        )

        # labels() takes a lock and checks its values on every call: on the paths taken for
        # every callback and every attempt, each child is looked up once.
        self._callbacks = functools.lru_cache(maxsize=1024)(self.callbacks.labels)
        self._ingest_seconds = functools.lru_cache(maxsize=1024)(self.ingest_seconds.labels)
        self._events = functools.lru_cache(maxsize=1024)(self.events.labels)
        self._deliveries = functools.lru_cache(maxsize=1024)(self.deliveries.labels)
        self._attempt_seconds = functools.lru_cache(maxsize=1024)(self.attempt_seconds.labels)

    def callback(self, source: str, outcome: str, reason: str, seconds: float) -> None:
        if source not in self.sources:
            source = UNKNOWN_SOURCE
        self._callbacks(source, outcome, reason).inc()
        self._ingest_seconds(source).observe(seconds)

    def stored(self, event_types: Iterable[str]) -> None:
        for event_type in event_types:
            self._events(event_type).inc()

    def attempt(self, destination: str, outcome: str, seconds: float) -> None:
        self._deliveries(destination, outcome).inc()
        self._attempt_seconds(destination).observe(seconds)

    def reconciled(self, source: str, outcome: str) -> None:
        self.reconciler.labels(source, outcome).inc()

    async def render(self, store: Store) -> bytes:
        """The metrics in Prometheus' text format, the queue gauges read from the store now."""
        now = time.time()
        states = {"paused": 0, "disabled": 0}
        for status in await store.destination_statuses(now):
            self.queue_depth.labels(status.name).set(status.queue_depth)
            oldest = now - status.oldest_pending_at if status.oldest_pending_at else 0
            self.oldest_pending.labels(status.name).set(oldest)
            self.dead.labels(status.name).set(status.dead)
            if status.state in states:
                states[status.state] += 1
        for state, count in states.items():
            self.disabled.labels(state).set(count)
        return generate_latest(self.registry)
