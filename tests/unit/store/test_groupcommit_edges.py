"""Edges of the group commit that the mutation run found untested: a waiter cancelled in the
middle of a batch, and stopping a committer that never started or has nothing in flight."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from receiver.errors import StoreError
from receiver.store.groupcommit import GroupCommit, ThreadGroupCommit

BOUND = 5.0  # seconds; a waiter left unresolved fails the test instead of hanging it


async def _write(items: Sequence[int]) -> list[int]:
    return [item * 10 for item in items]


def _write_here(items: Sequence[int]) -> list[int]:
    return [item * 10 for item in items]


async def test_a_waiter_cancelled_mid_batch_leaves_the_rest_of_the_batch_answered() -> None:
    batches: list[list[int]] = []

    async def write(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        await asyncio.sleep(0.01)  # the first waiter is cancelled meanwhile
        return await _write(items)

    commits = GroupCommit(write)
    commits.start()
    waiters = [asyncio.ensure_future(commits.submit(i)) for i in range(1, 5)]
    await asyncio.sleep(0.001)
    assert batches == [[1, 2, 3, 4]]
    waiters[0].cancel()
    rest = await asyncio.wait_for(asyncio.gather(*waiters[1:]), BOUND)
    assert rest == [20, 30, 40]
    await asyncio.wait_for(commits.stop(), BOUND)


async def test_the_writer_thread_answers_the_rest_of_a_batch_with_a_cancelled_waiter() -> None:
    gate = threading.Event()
    with ThreadPoolExecutor(1) as thread:
        thread.submit(gate.wait, BOUND)  # the thread is busy until every item is waiting
        commits = ThreadGroupCommit(_write_here, thread.submit)
        commits.start()
        waiters = [asyncio.ensure_future(commits.submit(i)) for i in range(1, 5)]
        await asyncio.sleep(0)
        waiters[0].cancel()
        gate.set()
        rest = await asyncio.wait_for(asyncio.gather(*waiters[1:]), BOUND)
        assert rest == [20, 30, 40]
        await asyncio.wait_for(commits.stop(), BOUND)
        assert commits.commits == 1


@pytest.mark.parametrize("driver", ["event loop", "writer thread"])
async def test_a_committer_never_started_refuses_writes_and_stops_at_once(driver: str) -> None:
    with ThreadPoolExecutor(1) as thread:
        commits = (
            GroupCommit(_write)
            if driver == "event loop"
            else ThreadGroupCommit(_write_here, thread.submit)
        )
        with pytest.raises(StoreError, match="not accepting writes"):
            await asyncio.wait_for(commits.submit(1), BOUND)
        await asyncio.wait_for(commits.stop(), BOUND)
        assert commits.commits == 0


@pytest.mark.parametrize("driver", ["event loop", "writer thread"])
async def test_stop_with_nothing_in_flight_returns_at_once(driver: str) -> None:
    with ThreadPoolExecutor(1) as thread:
        commits = (
            GroupCommit(_write)
            if driver == "event loop"
            else ThreadGroupCommit(_write_here, thread.submit)
        )
        commits.start()
        assert await commits.submit(3) == 30
        await asyncio.wait_for(commits.stop(), BOUND)
        with pytest.raises(StoreError):
            await asyncio.wait_for(commits.submit(4), BOUND)


async def test_a_failed_batch_is_logged_with_its_error(caplog: pytest.LogCaptureFixture) -> None:
    """The operator's one clue to why the writes were retried one by one."""

    async def write(items: Sequence[int]) -> list[int]:
        if len(items) > 1:
            raise ValueError("disk I/O error")
        return await _write(items)

    commits = GroupCommit(write)
    commits.start()
    with caplog.at_level(logging.WARNING, logger="photohook.store"):
        results = await asyncio.wait_for(
            asyncio.gather(*(commits.submit(i) for i in range(3))), BOUND
        )
        await asyncio.wait_for(commits.stop(), BOUND)
    assert results == [0, 10, 20]
    assert "a batch of 3 writes failed (disk I/O error); retrying each alone" in caplog.text
