"""The dashboard's landing page: recent callbacks and deliveries as server-rendered bar charts.

Every query reads a bounded window (the last hour by the minute, the last day by the hour)
through an index on the time; nothing here reads the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from receiver.observability.metrics import Metrics
from receiver.store import Activity, Count

CALLBACK_OUTCOMES = ("accepted", "duplicate", "rejected")
DELIVERY_OUTCOMES = ("delivered", "failed", "dead")


@dataclass(frozen=True, slots=True)
class Window:
    """``buckets`` bars of ``seconds`` each, the last one holding now."""

    name: str
    title: str
    seconds: int
    buckets: int

    def start(self, now: float) -> float:
        """The start of the first bucket."""
        return (now // self.seconds - self.buckets + 1) * self.seconds


WINDOWS = (
    Window("hour", "last hour, per minute", 60, 60),
    Window("day", "last day, per hour", 3600, 24),
)


@dataclass(frozen=True, slots=True)
class Segment:
    outcome: str
    count: int
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Bar:
    start: float
    x: float
    segments: list[Segment]

    @property
    def total(self) -> int:
        return sum(segment.count for segment in self.segments)


@dataclass(frozen=True, slots=True)
class Chart:
    """One source's callbacks (or one destination's attempts) in a window, as stacked bars."""

    name: str
    window: Window
    bars: list[Bar]
    peak: int
    totals: dict[str, int]

    WIDTH = 720
    HEIGHT = 120

    @property
    def bar_width(self) -> float:
        return self.WIDTH / self.window.buckets


async def accepted_callbacks(store: Activity, since: float, seconds: int) -> list[Count]:
    return await store.callback_counts(since, seconds)


def duplicate_callbacks(metrics: Metrics, since: float, seconds: int) -> list[Count]:
    return _recent(metrics, "duplicate", since, seconds)


def rejected_callbacks(metrics: Metrics, since: float, seconds: int) -> list[Count]:
    """Refused callbacks, unauthenticated ones included (those are never stored): as this
    process counted them since it started."""
    return _recent(metrics, "rejected", since, seconds)


def _recent(metrics: Metrics, outcome: str, since: float, seconds: int) -> list[Count]:
    return [
        Count(start - start % seconds, source, found, count)
        for start, (source, found), count in metrics.recent_callbacks.since(since)
        if found == outcome
    ]


async def callback_charts(
    store: Activity, metrics: Metrics, sources: Iterable[str], now: float
) -> dict[str, list[Chart]]:
    """Per window, a chart for each configured source (and for callbacks to unknown ones)."""
    charts = {}
    for window in WINDOWS:
        since = window.start(now)
        counts = [
            *await accepted_callbacks(store, since, window.seconds),
            *duplicate_callbacks(metrics, since, window.seconds),
            *rejected_callbacks(metrics, since, window.seconds),
        ]
        charts[window.name] = _charts(window, since, counts, sources, CALLBACK_OUTCOMES)
    return charts


async def delivery_charts(
    store: Activity, destinations: Iterable[str], now: float
) -> dict[str, list[Chart]]:
    """Per window, a chart of attempts for each configured destination."""
    charts = {}
    for window in WINDOWS:
        since = window.start(now)
        counts = await store.attempt_counts(since, window.seconds)
        charts[window.name] = _charts(window, since, counts, destinations, DELIVERY_OUTCOMES)
    return charts


def _charts(
    window: Window,
    since: float,
    counts: Sequence[Count],
    names: Iterable[str],
    outcomes: Sequence[str],
) -> list[Chart]:
    table: dict[str, dict[int, dict[str, int]]] = {name: {} for name in names}
    for count in counts:
        index = int((count.start - since) // window.seconds)
        if 0 <= index < window.buckets:
            bucket = table.setdefault(count.name, {}).setdefault(index, {})
            bucket[count.outcome] = bucket.get(count.outcome, 0) + count.count
    return [_chart(name, window, since, buckets, outcomes) for name, buckets in table.items()]


def _chart(
    name: str,
    window: Window,
    since: float,
    buckets: dict[int, dict[str, int]],
    outcomes: Sequence[str],
) -> Chart:
    peak = max((sum(bucket.values()) for bucket in buckets.values()), default=0)
    scale = (Chart.HEIGHT - 4) / peak if peak else 0.0
    width = Chart.WIDTH / window.buckets
    bars = []
    for index in range(window.buckets):
        bucket = buckets.get(index, {})
        y = float(Chart.HEIGHT)
        segments = []
        for outcome in outcomes:
            count = bucket.get(outcome, 0)
            if count:
                height = count * scale
                y -= height
                segments.append(Segment(outcome, count, round(y, 2), round(height, 2)))
        bars.append(Bar(since + index * window.seconds, round(index * width, 2), segments))
    totals = {
        outcome: sum(bucket.get(outcome, 0) for bucket in buckets.values()) for outcome in outcomes
    }
    return Chart(name, window, bars, peak, totals)
