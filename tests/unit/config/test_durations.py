"""Durations in the config file: read from text or a number, and written back."""

from __future__ import annotations

import pytest

from receiver.config import durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("15s", 15), ("5m", 300), ("2h", 7200), ("7d", 604800), ("30", 30), (2, 2)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert durations.parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5 minutes", "-1s", "1w", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        durations.parse_duration(bad)  # type: ignore[arg-type]


def test_format_duration() -> None:
    assert [durations.format_duration(s) for s in (0.25, 5, 300, 7200, 604800, 90)] == [
        "250ms",
        "5s",
        "5m",
        "2h",
        "7d",
        "90s",
    ]
