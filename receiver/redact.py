"""Redacting what must never be stored or logged: secret headers, tokens in paths."""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit, urlunsplit

import orjson

from receiver.types import Headers

REDACTED = "[redacted]"
_SENSITIVE_HEADERS = frozenset(
    {
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"set-cookie",
        b"x-webhook-secret",
        b"x-api-key",
    }
)
_SENSITIVE_WORDS = (b"secret", b"token", b"signature", b"password", b"api-key", b"apikey")
# Anywhere: below a mount point too, and inside a log line (so a token ends at a space or quote).
# A kept file's link, /files/{token}, is a credential as well.
_HOOK_PATH = re.compile(r"(/hooks/[^/\s]+/|/files/)[^/?\s\"']+")


@functools.lru_cache(maxsize=1024)  # header names repeat from request to request
def is_sensitive(name: bytes) -> bool:
    name = name.lower()
    return name in _SENSITIVE_HEADERS or any(word in name for word in _SENSITIVE_WORDS)


def headers_json(headers: Headers) -> bytes:
    """The headers as a JSON array of [name, value] pairs, secret values replaced, and a hook
    token masked in any other value (``Referer``, ``X-Original-URI`` carry the request's path)."""
    return orjson.dumps(
        [
            [
                name.decode("latin-1"),
                REDACTED if is_sensitive(name) else path(value.decode("latin-1")),
            ]
            for name, value in headers
        ]
    )


def path(raw_path: str) -> str:
    """A request path with the token of ``/hooks/{source}/{token}`` or ``/files/{token}``
    masked."""
    if "/hooks/" not in raw_path and "/files/" not in raw_path:
        return raw_path  # most header values: no regular expression to run
    return _HOOK_PATH.sub(r"\1<token>", raw_path)


def url(value: str) -> str:
    """A URL with its password, if any, replaced (a database URL in ``check``, say)."""
    parts = urlsplit(value)
    if parts.password is None:
        return value
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{REDACTED}@{host}"))
