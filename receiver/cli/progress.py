"""How far a long command has got, on stderr while a person watches it there.

On a terminal, one line redrawn in place at most every :data:`REDRAW_INTERVAL`: what is done, of
how many when that is known, and the rate. Piped, or redirected to a file, nothing: a log
collector gets the command's summary line, not hundreds of carriage returns.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

#: Seconds between redraws of the line.
REDRAW_INTERVAL = 0.1


class Progress:
    """Counts what a command has done; shows it while stderr is a terminal and ``shown``."""

    def __init__(
        self,
        doing: str,
        total: int | None = None,
        *,
        unit: str = "",
        shown: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.shown = shown and terminal(self.stream)
        self.doing = doing
        self.total = total
        self.unit = f" {unit}" if unit else ""
        self.done = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish()

    def advance(self, count: int = 1) -> None:
        self.done += count
        if not self.shown:
            return
        now = time.monotonic()
        if now - self._drawn_at >= REDRAW_INTERVAL or self.done == self.total:
            self._drawn_at = now
            self._draw(now)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> str:
        """``1234 rows/s``, over the whole run so far."""
        seconds = self.seconds
        per_second = self.done / seconds if seconds > 0 else 0.0
        return f"{per_second:.0f}{self.unit}/s"

    def finish(self) -> None:
        """Take the line away, for the command's summary to take its place."""
        if self._drawn:
            self._write("\r\x1b[K")
            self._drawn = False

    def _draw(self, now: float) -> None:
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = int(share * 20)
            counted = f"[{'#' * filled}{'.' * (20 - filled)}] {self.done}/{self.total}{self.unit}"
        else:
            counted = f"{self.done}{self.unit}"
        self._write(f"\r\x1b[K{self.doing}: {counted}, {self.rate()}")
        self._drawn = True

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.shown = False  # the terminal went away; the work goes on


def terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
