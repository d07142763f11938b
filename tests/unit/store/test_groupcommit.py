"""The group commit, with both drivers; and the edges the mutation run found untested: a waiter
cancelled in the middle of a batch, and stopping a committer that never started or has nothing in
flight."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from receiver.errors import StoreError, StoreUnavailable
from receiver.store.groupcommit import Committer, GroupCommit, ThreadGroupCommit


class Recorder:
    """A database that takes a millisecond per commit (more requests gather meanwhile)."""

    def __init__(self, poison: int | None = None, *, unreachable: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.poison = poison
        self.unreachable = unreachable
        self.seconds = 0.001

    async def write(self, items: Sequence[int]) -> list[int]:
        await asyncio.sleep(self.seconds)
        return self._commit(items)

    def write_here(self, items: Sequence[int]) -> list[int]:
        time.sleep(self.seconds)
        return self._commit(items)

    def _commit(self, items: Sequence[int]) -> list[int]:
        if self.unreachable:
            self.batches.append(list(items))
            raise StoreUnavailable("cannot store: the database did not answer in time")
        if self.poison in items:
            raise ValueError(f"cannot write {self.poison}")
        self.batches.append(list(items))
        return [item * 10 for item in items]


Make = Callable[..., Committer[int, int]]


@pytest.fixture(params=["event loop", "writer thread"])
def make(request: pytest.FixtureRequest) -> Iterator[Make]:
    """A started group commit over a recorder, driven either way."""
    thread = ThreadPoolExecutor(1)

    def started(recorder: Recorder, max_batch: int = 256) -> Committer[int, int]:
        commits: Committer[int, int]
        if request.param == "event loop":
            commits = GroupCommit(recorder.write, max_batch=max_batch)
        else:
            commits = ThreadGroupCommit(recorder.write_here, thread.submit, max_batch=max_batch)
        commits.start()
        return commits

    yield started
    thread.shutdown()


async def test_concurrent_submissions_share_commits(make: Make) -> None:
    recorder = Recorder()
    commits = make(recorder)
    results = await asyncio.gather(*(commits.submit(i) for i in range(200)))
    await commits.stop()
    assert results == [i * 10 for i in range(200)]
    assert sorted(i for batch in recorder.batches for i in batch) == list(range(200))
    assert len(recorder.batches) < 20
    assert commits.commits == len(recorder.batches)


async def test_one_failing_item_does_not_roll_back_the_others(make: Make) -> None:
    recorder = Recorder(poison=7)
    commits = make(recorder)
    outcomes = await asyncio.gather(*(commits.submit(i) for i in range(20)), return_exceptions=True)
    await commits.stop()
    assert isinstance(outcomes[7], ValueError)
    assert [o for i, o in enumerate(outcomes) if i != 7] == [i * 10 for i in range(20) if i != 7]
    assert 7 not in [i for batch in recorder.batches for i in batch]


async def test_an_unreachable_database_fails_the_batch_at_once(make: Make) -> None:
    """Tried one by one, each item would wait out the same timeout in turn."""
    recorder = Recorder(unreachable=True)
    commits = make(recorder)
    outcomes = await asyncio.gather(*(commits.submit(i) for i in range(20)), return_exceptions=True)
    await commits.stop()
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
    assert sorted(i for batch in recorder.batches for i in batch) == list(range(20))  # once each


async def test_batches_are_capped(make: Make) -> None:
    recorder = Recorder()
    commits = make(recorder, max_batch=16)
    await asyncio.gather(*(commits.submit(i) for i in range(100)))
    await commits.stop()
    assert max(len(batch) for batch in recorder.batches) <= 16


async def test_stop_commits_what_was_submitted_then_refuses(make: Make) -> None:
    recorder = Recorder()
    commits = make(recorder, max_batch=3)
    pending = [asyncio.ensure_future(commits.submit(i)) for i in range(10)]
    await asyncio.sleep(0)
    await commits.stop()
    assert [await p for p in pending] == [i * 10 for i in range(10)]
    assert [] not in recorder.batches  # nothing left for a batch queued before the stop
    with pytest.raises(StoreError):
        await commits.submit(99)


async def test_a_cancelled_waiter_does_not_break_the_writer(make: Make) -> None:
    recorder = Recorder()
    commits = make(recorder)
    waiter = asyncio.ensure_future(commits.submit(1))
    await asyncio.sleep(0)
    waiter.cancel()
    assert await commits.submit(2) == 20
    await commits.stop()
    assert [1] in recorder.batches or [1, 2] in recorder.batches


async def test_the_writer_thread_goes_on_to_the_next_batch_without_the_event_loop() -> None:
    """What gathered during a commit is committed next, while the event loop is still busy
    elsewhere: the thread does not wait for the loop to hand it the batch."""
    recorder = Recorder()
    recorder.seconds = 0.05
    with ThreadPoolExecutor(1) as thread:
        commits = ThreadGroupCommit(recorder.write_here, thread.submit)
        commits.start()
        first = asyncio.ensure_future(commits.submit(1))
        await asyncio.sleep(0.01)  # the thread is committing [1]
        rest = [asyncio.ensure_future(commits.submit(i)) for i in range(2, 6)]
        await asyncio.sleep(0)  # each is waiting
        time.sleep(0.5)  # noqa: ASYNC251 -- the event loop is busy elsewhere
        assert recorder.batches == [[1], [2, 3, 4, 5]]
        assert await first == 10
        assert [await r for r in rest] == [20, 30, 40, 50]
        await commits.stop()


async def test_the_writer_thread_runs_other_work_between_batches() -> None:
    """A steady stream of writes does not starve the thread's other transactions (claims)."""
    recorder = Recorder()
    ran: list[int] = []
    with ThreadPoolExecutor(1) as thread:
        commits = ThreadGroupCommit(recorder.write_here, thread.submit, max_batch=10)
        commits.start()
        writes = [asyncio.ensure_future(commits.submit(i)) for i in range(100)]
        await asyncio.sleep(0)  # all are waiting; the thread has begun the first batch
        thread.submit(lambda: ran.append(len(recorder.batches)))
        await asyncio.gather(*writes)
        await commits.stop()
    assert len(recorder.batches) >= 10
    assert ran and ran[0] <= 3  # after the first batch or so, not after all of them


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
