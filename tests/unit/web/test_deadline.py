"""A callback's deadline: one timer, moved without being started again when it can wait, and a
cancellation that comes out as asyncio.timeout's does."""

from __future__ import annotations

import asyncio
import time

import pytest

from receiver.web.deadline import RequestDeadline


def _now() -> float:
    return asyncio.get_running_loop().time()


async def test_a_deadline_that_comes_raises_timeout_error_at_its_time() -> None:
    deadline = RequestDeadline(_now() + 0.1, _now() + 10)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with deadline:
            await asyncio.sleep(5)
    assert deadline.expired()
    assert 0.09 < time.monotonic() - started < 1
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_first_look_before_the_deadline_waits_on_for_it() -> None:
    deadline = RequestDeadline(_now() + 0.3, _now() + 0.05)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with deadline:
            await asyncio.sleep(5)
    assert 0.29 < time.monotonic() - started < 1


async def test_a_deadline_moved_later_is_kept_not_the_first() -> None:
    async def work(deadline: RequestDeadline) -> None:
        async with deadline:
            await asyncio.sleep(0.01)
            deadline.move(_now() + 0.3)  # later than the first look: the timer stays
            await asyncio.sleep(5)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await work(RequestDeadline(_now() + 5, _now() + 0.05))
    assert 0.29 < time.monotonic() - started < 1


async def test_a_deadline_moved_earlier_than_the_timer_starts_it_again() -> None:
    async def work(deadline: RequestDeadline) -> None:
        async with deadline:
            deadline.move(_now() + 0.1)
            await asyncio.sleep(5)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await work(RequestDeadline(_now() + 5, _now() + 5))
    assert time.monotonic() - started < 1


async def test_work_done_in_time_is_not_touched() -> None:
    deadline = RequestDeadline(_now() + 0.2, _now() + 0.1)
    async with deadline:
        await asyncio.sleep(0.01)
        deadline.move(_now() + 0.2)
        await asyncio.sleep(0.01)
    assert not deadline.expired()
    await asyncio.sleep(0.3)  # its timer was stopped: nothing cancels this task later


async def test_a_cancellation_not_its_own_stays_a_cancellation() -> None:
    async def work() -> None:
        async with RequestDeadline(_now() + 5, _now() + 5):
            await asyncio.sleep(5)

    task = asyncio.create_task(work())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_requested_beside_its_own_is_not_made_a_timeout() -> None:
    async def work() -> None:
        async with RequestDeadline(_now() + 0.05, _now() + 0.05):
            try:
                await asyncio.sleep(5)
            finally:
                asyncio.current_task().cancel()  # type: ignore[union-attr]  # another's

    task = asyncio.create_task(work())
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_other_errors_pass_through() -> None:
    with pytest.raises(ValueError, match="its own"):
        async with RequestDeadline(_now() + 5, _now() + 5):
            raise ValueError("its own")
