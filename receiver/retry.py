"""When to try a failed delivery again."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


class Retry(Exception):
    """Raise from a handler to try the delivery again, after ``after`` seconds if given."""

    def __init__(self, after: float | None = None) -> None:
        super().__init__(f"retry requested (after {after}s)" if after is not None else "retry")
        self.after = after


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """The delay after each failed attempt; when it runs out, the delivery is dead.

    ``delays[n]`` follows failed attempt ``n + 1``, with +-``jitter`` so that deliveries failed
    together do not all come back together. A ``Retry-After`` from the destination (or a
    handler's ``Retry(after=...)``) is honoured within ``[delay, 2 * delay]``: neither sooner than
    the schedule nor unboundedly later.
    """

    delays: Sequence[float] = DEFAULT_SCHEDULE
    jitter: float = 0.2

    def next_delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (from 1), or None: dead."""
        if attempt < 1 or attempt > len(self.delays):
            return None
        delay = self.delays[attempt - 1]
        if retry_after is not None:
            return min(max(retry_after, delay), 2 * delay)
        return delay * random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311
