"""Counters and histograms for the paths that every callback and every delivery attempt take:
prometheus_client's own lock and look up labels on every change, clearly more CPU per callback.

These are plain numbers, changed from the event loop's thread alone and read from it when
``/metrics`` is rendered (what they save is measured by ``python -m bench.parts --internals``
and recorded in bench/results). Each reaches Prometheus as a collector of the same registry, in
the same text format as the library's own (``_total``, ``_bucket``, ``_sum``, ``_count``),
without the ``_created`` series that photohook turns off (see
:mod:`receiver.observability.metrics`). This is the one module that builds metric families by
hand; pyproject.toml bounds prometheus-client below its next minor release and
``tests/unit/observability/test_tallies.py`` fails when the library's own counters read otherwise.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

Labels = tuple[str, ...]


class Tally:
    """A counter, by label values. Change it from the event loop's thread only."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._values: dict[Labels, float] = {}
        registry.register(self)

    def inc(self, labels: Labels, amount: float = 1) -> None:
        if labels in self._values:
            self._values[labels] += amount
        else:
            self._values[labels] = amount

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for labels, value in self._values.items():
            family.add_metric(labels, value)
        yield family


class TallyHistogram:
    """A histogram, by label values. Change it from the event loop's thread only."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = tuple(sorted(buckets))  # the finite upper bounds; +Inf is implied
        #: per label values: the count in each bucket (not cumulative, +Inf last), then the sum
        self._series: dict[Labels, list[float]] = {}
        registry.register(self)

    def observe(self, labels: Labels, value: float) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0] * (len(self._bounds) + 2)
        series[bisect.bisect_left(self._bounds, value)] += 1  # le: the first bound >= value
        series[-1] += value

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        bounds = [*map(floatToGoString, self._bounds), "+Inf"]
        for labels, series in self._series.items():
            cumulative, buckets = 0.0, []
            for bound, count in zip(bounds, series[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric(labels, buckets, sum_value=series[-1])
        yield family


class MinuteTally:
    """Counts by label values and minute, kept for a day: what happened recently, for the
    dashboard's charts, where the store keeps no row to count. Change it from the event loop's
    thread only."""

    def __init__(self, keep_minutes: int = 24 * 60, clock: Callable[[], float] = time.time):
        self._keep = keep_minutes
        self._clock = clock
        self._minutes: dict[int, dict[Labels, int]] = {}

    def inc(self, labels: Labels) -> None:
        minute = int(self._clock() // 60)
        counts = self._minutes.get(minute)
        if counts is None:
            counts = self._minutes[minute] = {}
            # At most once a minute: forget the minutes that fell out of the day.
            for old in [m for m in self._minutes if m <= minute - self._keep]:
                del self._minutes[old]
        counts[labels] = counts.get(labels, 0) + 1

    def since(self, start: float) -> Iterator[tuple[float, Labels, int]]:
        """(the minute's start in Unix seconds, labels, count) for each minute from ``start``."""
        first = start // 60
        for minute, counts in list(self._minutes.items()):
            if minute >= first:
                for labels, count in counts.items():
                    yield minute * 60.0, labels, count
