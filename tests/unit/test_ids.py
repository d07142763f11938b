"""Ids: unique, sortable, carrying their time; and the pooled random bytes they are made of."""

from __future__ import annotations

import os
import time

import pytest

from receiver import ids


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
