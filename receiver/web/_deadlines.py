"""Deadlines for many short tasks, kept by one look every so often rather than a timer each.

Every callback has a deadline (its body's, then its commit's). ``asyncio.timeout`` arms and
disarms a timer for each, which cost 7% of a callback's CPU; here a request's deadline is one
dict entry, and a single task cancels whatever is overdue, a quarter of a second late at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

#: Seconds between looks for overdue tasks: how late a deadline may be enforced.
INTERVAL = 0.25


class Deadlines:
    """Cancels a task that passes its deadline; :meth:`clear` then says the cancellation was
    this one's, so that the task can answer a timeout instead of dying."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self._interval = interval
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()

    def set(self, task: asyncio.Task[Any], seconds: float) -> None:
        """Cancel ``task`` if it is still running ``seconds`` from now (replacing any earlier
        deadline of it)."""
        self._due[task] = task.get_loop().time() + seconds

    def clear(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``'s deadline; whether it had passed, and the task been cancelled for it.

        After a True, the task has been un-cancelled; it still has a pending cancellation only
        when something else cancelled it too (``task.cancelling()``), as with asyncio.timeout.
        """
        self._due.pop(task, None)
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    async def run(self) -> None:
        """Enforce the deadlines until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            now = loop.time()
            overdue = [task for task, deadline in self._due.items() if deadline <= now]
            for task in overdue:
                del self._due[task]
                if not task.done():
                    self._expired.add(task)
                    task.cancel()
