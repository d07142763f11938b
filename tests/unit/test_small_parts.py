from __future__ import annotations

import time

import orjson
import pytest

from receiver import durations, ids, redact


def test_ids_are_unique_sortable_and_carry_their_time() -> None:
    before = time.time_ns() // 1_000_000
    made = [ids.new_id("evt") for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    assert made == sorted(made)
    assert all(i.startswith("evt_") and len(i) == 30 for i in made)
    assert before <= ids.timestamp_ms(made[0]) <= ids.timestamp_ms(made[-1]) <= after


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
