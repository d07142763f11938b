"""The tallies read exactly as prometheus_client's own metrics would, given the same counts: the
fence of the prometheus-client version bound in pyproject.toml."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from receiver.observability._tallies import MinuteTally, Tally, TallyHistogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.5, 10.0)
LABEL = st.sampled_from(["fotor", "cropphoto", 'odd "quoted"\nname'])
# Bounds themselves are drawn often: a value equal to a bound is in that bucket (le).
VALUE = st.one_of(st.sampled_from(BUCKETS), st.floats(0, 100, allow_nan=False))


def exposition(registry: CollectorRegistry) -> list[str]:
    """The text format, without the ``_created`` times (each metric takes its own)."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


@given(st.lists(st.tuples(LABEL, LABEL, st.integers(1, 5)), max_size=30))
def test_a_tally_reads_as_a_counter(increments: list[tuple[str, str, int]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    counter = Counter("photohook_things", "Things.", ["source", "outcome"], registry=theirs)
    tally = Tally("photohook_things", "Things.", ["source", "outcome"], ours)
    for source, outcome, amount in increments:
        counter.labels(source, outcome).inc(amount)
        tally.inc((source, outcome), amount)
    assert exposition(ours) == exposition(theirs)


@given(st.lists(st.tuples(LABEL, VALUE), max_size=40))
def test_a_tally_histogram_reads_as_a_histogram(observations: list[tuple[str, float]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    histogram = Histogram(
        "photohook_wait_seconds", "Waits.", ["source"], buckets=BUCKETS, registry=theirs
    )
    tally = TallyHistogram("photohook_wait_seconds", "Waits.", ["source"], BUCKETS, ours)
    for source, value in observations:
        histogram.labels(source).observe(value)
        tally.observe((source,), value)
    assert exposition(ours) == exposition(theirs)


def test_no_series_has_a_created_time() -> None:
    registry = CollectorRegistry()
    Tally("photohook_things", "Things.", ["source"], registry).inc(("fotor",))
    TallyHistogram("photohook_wait_seconds", "Waits.", ["source"], BUCKETS, registry).observe(
        ("fotor",), 0.2
    )
    text = generate_latest(registry).decode()
    assert 'photohook_things_total{source="fotor"} 1.0' in text
    assert 'photohook_wait_seconds_count{source="fotor"} 1.0' in text
    assert "_created" not in text


def test_a_minute_tally_counts_by_minute_and_forgets_what_is_a_day_old() -> None:
    now = [1_800_000_000.0]
    tally = MinuteTally(keep_minutes=3, clock=lambda: now[0])
    for seconds in (0, 30, 61, 125, 190):
        now[0] = 1_800_000_000.0 + seconds
        tally.inc(("fotor", "rejected"))
    start = 1_800_000_000.0 // 60 * 60
    assert sorted(tally.since(0)) == [
        (start + 60, ("fotor", "rejected"), 1),
        (start + 120, ("fotor", "rejected"), 1),
        (start + 180, ("fotor", "rejected"), 1),
    ]
    assert sorted(at for at, _, _ in tally.since(start + 150)) == [start + 120, start + 180]
