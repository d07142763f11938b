"""An event's times, stored as sortable UTC text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from receiver.events import format_time, parse_time


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 22, 12, 0, 5, 123, tzinfo=UTC), "2026-11-22T12:00:05.000123Z"),
        (datetime(2026, 11, 22, 12, 0, 5, tzinfo=UTC), "2026-11-22T12:00:05.000000Z"),
        (
            datetime(2026, 11, 22, 13, 30, tzinfo=timezone(timedelta(hours=1, minutes=30))),
            "2026-11-22T12:00:00.000000Z",
        ),
    ],
)
def test_times_are_stored_as_sortable_utc_text(moment: datetime, text: str) -> None:
    assert format_time(moment) == text
    assert parse_time(text) == moment
