from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from receiver.errors import StoreError, StoreUnavailable
from receiver.store.groupcommit import GroupCommit


class Recorder:
    def __init__(self, poison: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.poison = poison

    async def write(self, items: Sequence[int]) -> list[int]:
        await asyncio.sleep(0.001)  # a commit takes time; more requests gather meanwhile
        if self.poison in items:
            raise ValueError(f"cannot write {self.poison}")
        self.batches.append(list(items))
        return [item * 10 for item in items]


async def test_concurrent_submissions_share_commits() -> None:
    recorder = Recorder()
    commits = GroupCommit(recorder.write)
    commits.start()
    results = await asyncio.gather(*(commits.submit(i) for i in range(200)))
    await commits.stop()
    assert results == [i * 10 for i in range(200)]
    assert sorted(i for batch in recorder.batches for i in batch) == list(range(200))
    assert len(recorder.batches) < 20
    assert commits.commits == len(recorder.batches)


async def test_one_failing_item_does_not_roll_back_the_others() -> None:
    recorder = Recorder(poison=7)
    commits = GroupCommit(recorder.write)
    commits.start()
    outcomes = await asyncio.gather(*(commits.submit(i) for i in range(20)), return_exceptions=True)
    await commits.stop()
    assert isinstance(outcomes[7], ValueError)
    assert [o for i, o in enumerate(outcomes) if i != 7] == [i * 10 for i in range(20) if i != 7]
    assert 7 not in [i for batch in recorder.batches for i in batch]


async def test_an_unreachable_database_fails_the_batch_at_once() -> None:
    """Tried one by one, each item would wait out the same timeout in turn."""
    calls: list[list[int]] = []

    async def write(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        await asyncio.sleep(0.001)
        raise StoreUnavailable("cannot store: the database did not answer in time")

    commits = GroupCommit(write)
    commits.start()
    outcomes = await asyncio.gather(*(commits.submit(i) for i in range(20)), return_exceptions=True)
    await commits.stop()
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
    assert sorted(i for batch in calls for i in batch) == list(range(20))  # each tried once


async def test_batches_are_capped() -> None:
    recorder = Recorder()
    commits = GroupCommit(recorder.write, max_batch=16)
    commits.start()
    await asyncio.gather(*(commits.submit(i) for i in range(100)))
    await commits.stop()
    assert max(len(batch) for batch in recorder.batches) <= 16


async def test_stop_commits_what_was_submitted_then_refuses() -> None:
    recorder = Recorder()
    commits = GroupCommit(recorder.write)
    commits.start()
    pending = [asyncio.ensure_future(commits.submit(i)) for i in range(10)]
    await asyncio.sleep(0)
    await commits.stop()
    assert [await p for p in pending] == [i * 10 for i in range(10)]
    with pytest.raises(StoreError):
        await commits.submit(99)


async def test_a_cancelled_waiter_does_not_break_the_writer() -> None:
    recorder = Recorder()
    commits = GroupCommit(recorder.write)
    commits.start()
    waiter = asyncio.ensure_future(commits.submit(1))
    await asyncio.sleep(0)
    waiter.cancel()
    assert await commits.submit(2) == 20
    await commits.stop()
    assert [1] in recorder.batches or [1, 2] in recorder.batches
