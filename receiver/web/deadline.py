"""A callback's deadline on one timer: first its body's, then its commit's.

``asyncio.timeout``, armed for the body and moved for the commit, cost 41k instructions a
callback under callgrind (Python 3.11, uvloop): its state is an Enum, whose members cost about
850 instructions a look-up on 3.11, and each move stops one uvloop timer and starts another
(10k a pair). Here the one timer starts for the earliest moment either deadline can come and,
should it fire before the deadline then in force, starts again for that deadline: a callback
answered within that moment, nearly every one, costs one timer. Its cancellation comes out as
``asyncio.timeout``'s does.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

#: How early a timer may fire: uvloop counts its time in milliseconds.
_EARLY = 0.001


class RequestDeadline:
    """``async with RequestDeadline(when, check_at):`` cancels the task at ``when`` (the event
    loop's time), which :meth:`move` changes, and raises :class:`TimeoutError` in its place.

    ``check_at`` is the earliest moment a deadline can come (given or moved), when the timer
    first looks: a deadline moved earlier than the timer starts it again at once.
    """

    __slots__ = ("_armed", "_cancelling", "_expired", "_handle", "_loop", "_task", "_when")

    def __init__(self, when: float, check_at: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._when = when
        self._armed = min(when, check_at)
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False
        self._cancelling = 0

    async def __aenter__(self) -> RequestDeadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a RequestDeadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._handle = self._loop.call_at(self._armed, self._on_time)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        # As asyncio.timeout: a cancellation of ours, and none requested since, is a timeout.
        if (
            self._expired
            and self._task is not None
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc

    def move(self, when: float) -> None:
        """The deadline is now ``when`` (the event loop's time)."""
        self._when = when
        if self._handle is not None and when < self._armed:
            self._handle.cancel()
            self._start(when)

    def expired(self) -> bool:
        """Whether the deadline came and cancelled the task."""
        return self._expired

    def _start(self, when: float) -> None:
        self._armed = when
        self._handle = self._loop.call_at(when, self._on_time)

    def _on_time(self) -> None:
        if self._when - self._loop.time() > _EARLY:
            self._start(self._when)  # moved later since, or a first look before the deadline
            return
        self._handle = None
        self._expired = True
        if self._task is not None:
            self._task.cancel()
