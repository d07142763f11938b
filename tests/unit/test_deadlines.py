"""Deadlines kept by one watching task."""

from __future__ import annotations

import asyncio

from receiver.web._deadlines import Deadlines


async def test_an_overdue_task_is_cancelled_and_told_so_and_carries_on() -> None:
    deadlines = Deadlines(interval=0.01)
    watcher = asyncio.create_task(deadlines.run())

    async def slow() -> str:
        task = asyncio.current_task()
        assert task is not None
        deadlines.set(task, 0.05)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            if deadlines.clear(task) and not task.cancelling():
                return "timed out"
            raise
        return "finished"

    async def quick() -> str:
        task = asyncio.current_task()
        assert task is not None
        deadlines.set(task, 10)
        await asyncio.sleep(0.01)
        return "finished" if not deadlines.clear(task) else "timed out"

    try:
        assert await asyncio.wait_for(asyncio.gather(slow(), quick()), 5) == [
            "timed out",
            "finished",
        ]
    finally:
        watcher.cancel()


async def test_a_cancellation_from_elsewhere_is_not_taken_for_a_deadline() -> None:
    deadlines = Deadlines(interval=0.01)
    watcher = asyncio.create_task(deadlines.run())
    started = asyncio.Event()
    seen: list[bool] = []

    async def request() -> None:
        task = asyncio.current_task()
        assert task is not None
        deadlines.set(task, 10)
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append(deadlines.clear(task))
            raise

    task = asyncio.create_task(request())
    await started.wait()
    task.cancel()  # the server stopping, say
    try:
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    finally:
        watcher.cancel()
    assert seen == [False]
    assert task.cancelled()
