"""What is kept or shown of secrets: stored headers redacted, tokens in paths masked, a
database URL without its password."""

from __future__ import annotations

import orjson

from receiver import redact


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
