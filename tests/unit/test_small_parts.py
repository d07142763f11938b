from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from receiver import ids, redact
from receiver.config import durations
from receiver.events import format_time, parse_time


def test_ids_are_unique_sortable_and_carry_their_time() -> None:
    before = time.time_ns() // 1_000_000
    made = [ids.new_id("evt") for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    assert made == sorted(made)
    assert all(i.startswith("evt_") and len(i) == 30 for i in made)
    assert before <= ids.timestamp_ms(made[0]) <= ids.timestamp_ms(made[-1]) <= after


def _value(ulid: str) -> int:
    value = 0
    for char in ulid:
        value = value * 32 + ids._ALPHABET.index(char)
    return value


def test_ids_within_a_millisecond_count_up_by_one_across_every_carry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A clock behind the last id's millisecond: the ids count up from there.
    ms = time.time_ns() // 1_000_000 + 60_000
    monkeypatch.setattr(ids, "_last_ms", ms)
    for start in ((1 << 20) - 3, (1 << 40) - 2, (1 << 70) - 2):
        monkeypatch.setattr(ids, "_last_random", start)
        values = [_value(ids.ulid()) for _ in range(5)]
        assert values == [(ms << 80) + start + n for n in range(1, 6)]


def test_pooled_random_bytes_never_repeat_and_a_forked_child_reads_its_own() -> None:
    chunks = [ids.random_bytes(10) for _ in range(2000)]  # several refills of the pool
    assert len(set(chunks)) == len(chunks) and all(len(c) == 10 for c in chunks)
    ids.random_bytes(1)  # the pool now holds bytes the parent has not used
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next bytes and leave at once
        os.write(writer, ids.random_bytes(16))
        os._exit(0)
    os.close(writer)
    child = os.read(reader, 16)
    os.close(reader)
    os.waitpid(pid, 0)
    assert len(child) == 16 and child != ids.random_bytes(16)


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


def test_secret_headers_are_redacted() -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"X-Webhook-Secret", b"s3cret"),
        (b"authorization", b"Bearer abc"),
        (b"x-custom-token", b"t0ken"),
        (b"cookie", b"session=1"),
    ]
    stored = orjson.loads(redact.headers_json(headers))
    assert stored[0] == ["content-type", "application/json"]
    assert all(value == "[redacted]" for _, value in stored[1:])
    assert b"s3cret" not in redact.headers_json(headers)


def test_tokens_in_paths_are_masked() -> None:
    assert redact.path("/hooks/fotor/abcDEF-123_x") == "/hooks/fotor/<token>"
    assert redact.path("/hooks/fotor") == "/hooks/fotor"
    assert redact.path("/healthz") == "/healthz"


def test_a_database_url_is_shown_without_its_password() -> None:
    masked = redact.url("postgresql://photohook:s3cret@db.internal:5432/photohook?sslmode=require")
    assert masked == "postgresql://photohook:[redacted]@db.internal:5432/photohook?sslmode=require"
    assert (
        redact.url("postgresql://postgres@127.0.0.1/test") == "postgresql://postgres@127.0.0.1/test"
    )
    assert redact.url("sqlite:///photohook.db") == "sqlite:///photohook.db"
