"""Sortable unique identifiers: a prefix and a ULID (48-bit milliseconds + 80 random bits).

Identifiers made by one process sort in the order they were made, even within a millisecond.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1

_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def _next_value() -> int:
    global _last_ms, _last_random
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms <= _last_ms and _last_random < _RANDOM_MAX:
            ms, random = _last_ms, _last_random + 1
        else:
            random = secrets.randbits(_RANDOM_BITS)
        _last_ms, _last_random = ms, random
    return (ms << _RANDOM_BITS) | random


def ulid() -> str:
    """A 26-character ULID string."""
    value = _next_value()
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """``prefix`` + ``"_"`` + a ULID, e.g. ``evt_01JD3Z...``."""
    return f"{prefix}_{ulid()}"


def timestamp_ms(identifier: str) -> int:
    """The creation time (Unix milliseconds) encoded in an id made by :func:`new_id`."""
    value = 0
    for char in identifier.rpartition("_")[2][:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value
