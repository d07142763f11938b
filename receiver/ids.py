"""Sortable unique identifiers: a prefix and a ULID (48-bit milliseconds + 80 random bits).

Identifiers made by one process sort in the order they were made, even within a millisecond.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # ten bits as two characters
# The 128 bits, with two leading zero bits, as 13 pairs: the first 11 (108 bits) change only
# when the millisecond does or a count carries past the last 20 bits.
_HEAD_SHIFTS = range(100, -1, -10)
_POOL_SIZE = 4096

_lock = threading.Lock()
_pool_lock = threading.Lock()
_last_ms = 0
_last_random = 0
_last_high = -1
_last_head = ""
_pool = b""
_pool_at = 0


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the operating system's CSPRNG, read a few kilobytes at a time (one
    system call per id would cost more than the rest of making it)."""
    global _pool, _pool_at
    with _pool_lock:
        if _pool_at + n > len(_pool):
            _pool, _pool_at = os.urandom(max(_POOL_SIZE, n)), 0
        chunk = _pool[_pool_at : _pool_at + n]
        _pool_at += n
    return chunk


def _forget_pool() -> None:
    global _pool, _pool_at
    _pool, _pool_at = b"", 0


os.register_at_fork(after_in_child=_forget_pool)  # a forked child never reuses its parent's


def _next() -> tuple[str, int]:
    """The next ULID's first 22 characters, and its last 20 bits."""
    global _last_ms, _last_random, _last_high, _last_head
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms <= _last_ms and _last_random < _RANDOM_MAX:
            ms, random = _last_ms, _last_random + 1
        else:
            random = int.from_bytes(random_bytes(_RANDOM_BITS // 8))
        _last_ms, _last_random = ms, random
        high = (ms << 60) | (random >> 20)
        if high != _last_high:
            _last_high = high
            _last_head = "".join([_PAIRS[(high >> shift) & 1023] for shift in _HEAD_SHIFTS])
        return _last_head, random & 0xFFFFF


def ulid() -> str:
    """A 26-character ULID string."""
    head, low = _next()
    return head + _PAIRS[low >> 10] + _PAIRS[low & 1023]


def new_id(prefix: str) -> str:
    """``prefix`` + ``"_"`` + a ULID, e.g. ``evt_01JD3Z...``."""
    head, low = _next()  # as ulid() does, one call fewer: a callback makes two ids
    return f"{prefix}_{head}{_PAIRS[low >> 10]}{_PAIRS[low & 1023]}"


def timestamp_ms(identifier: str) -> int:
    """The creation time (Unix milliseconds) encoded in an id made by :func:`new_id`."""
    value = 0
    for char in identifier.rpartition("_")[2][:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value
