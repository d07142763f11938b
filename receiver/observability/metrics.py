"""Prometheus metrics (``GET /metrics``), one registry per application (or worker process)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from receiver.observability._tallies import MinuteTally, Tally, TallyHistogram
from receiver.states import DestinationState
from receiver.store import Status

#: The media type of Prometheus' text format.
MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
UNKNOWN_SOURCE = "(unknown)"


def drop_created_series() -> None:
    """Turn off prometheus_client's ``_created`` series, for the whole process: ``photohook
    serve`` and ``worker`` do so at start-up, an application embedding photohook decides for itself.

    A ``_created`` series for every counter and histogram doubles what is scraped and stored, for
    a start time that ``process_start_time_seconds`` already tells.
    """
    disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """What photohook counts. Labels are bounded: configured sources and destinations only."""

    def __init__(self, sources: Iterable[str], destinations: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # The process's CPU, memory and open files, and Python's version and collections.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.sources = frozenset(sources)
        self.destinations = frozenset(destinations)
        # Counted for every callback and every attempt: plain numbers, not the library's
        # (see receiver.observability._tallies).
        self.callbacks = Tally(
            "photohook_callbacks",
            "Callbacks received, by source and outcome (accepted, duplicate, rejected).",
            ["source", "outcome", "reason"],
            self.registry,
        )
        self.rejected_requests = Tally(
            "photohook_rejected_requests",
            "Authenticated callbacks refused for their content (400, 413, 415, 422), by source "
            "and whether they were kept or turned away by the source's cap (kept, over_cap).",
            ["source", "outcome"],
            self.registry,
        )
        #: Duplicate and rejected callbacks by (source, outcome) and minute, for the dashboard:
        #: accepted ones are counted from the store.
        self.recent_callbacks = MinuteTally()
        self.ingest_seconds = TallyHistogram(
            "photohook_ingest_duration_seconds",
            "Time from a callback's arrival to its answer.",
            ["source"],
            _LATENCY_BUCKETS,
            self.registry,
        )
        self.events = Tally("photohook_events", "Events stored, by type.", ["type"], self.registry)
        self.deliveries = Tally(
            "photohook_delivery_attempts",
            "Delivery attempts, by destination and the state they left the delivery in.",
            ["destination", "outcome"],
            self.registry,
        )
        self.attempt_seconds = TallyHistogram(
            "photohook_delivery_attempt_duration_seconds",
            "Duration of delivery attempts.",
            ["destination"],
            _LATENCY_BUCKETS,
            self.registry,
        )
        self.queue_depth = Gauge(
            "photohook_queue_depth",
            "Deliveries waiting (pending, retrying, held or keeping), by destination.",
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
        self.result_files = Counter(
            "photohook_result_files",
            "Fetches of result files to keep (keep_results), by outcome (kept, retried, missing).",
            ["outcome"],
            registry=self.registry,
        )
        self.result_bytes = Counter(
            "photohook_result_file_bytes",
            "Bytes of result files kept, by result store (local, s3).",
            ["store"],
            registry=self.registry,
        )
        self.disabled = Gauge(
            "photohook_destinations_disabled",
            "Destinations disabled (410 Gone) or paused.",
            ["state"],
            registry=self.registry,
        )

    def callback(self, source: str, outcome: str, reason: str, seconds: float) -> None:
        if source not in self.sources:
            source = UNKNOWN_SOURCE
        self.callbacks.inc((source, outcome, reason))
        if outcome != "accepted":
            self.recent_callbacks.inc((source, outcome))
        self.ingest_seconds.observe((source,), seconds)

    def rejected(self, source: str, outcome: str) -> None:
        self.rejected_requests.inc((source, outcome))

    def stored(self, event_types: Iterable[str]) -> None:
        for event_type in event_types:
            self.events.inc((event_type,))

    def attempt(self, destination: str, outcome: str, seconds: float) -> None:
        self.deliveries.inc((destination, outcome))
        self.attempt_seconds.observe((destination,), seconds)

    def reconciled(self, source: str, outcome: str) -> None:
        self.reconciler.labels(source, outcome).inc()

    def kept(self, outcome: str, store: str, size: int = 0) -> None:
        self.result_files.labels(outcome).inc()
        if size:
            self.result_bytes.labels(store).inc(size)

    async def render(self, store: Status) -> bytes:
        """The metrics in Prometheus' text format, the queue gauges read from the store now."""
        now = time.time()
        states: dict[str, int] = {DestinationState.PAUSED: 0, DestinationState.DISABLED: 0}
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
