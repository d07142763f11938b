"""Running the commands' coroutines on the event loop ``serve`` uses: uvloop where installed
(``uvicorn[standard]`` brings it), else asyncio's own; and readying a long-running process's
heap for it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] depends on it on Linux and macOS
        return asyncio.run(main)
    return uvloop.run(main)


def freeze_startup_objects() -> None:
    """Leave the objects that exist once a process has started out of every later garbage
    collection (``gc.freeze``): they live as long as the process, and each full collection walked
    them all again, a pause in which no request was answered (the p99 is in bench/results).

    Modules, classes, functions, settings, the application. Call it once start-up is done,
    before serving.
    """
    gc.collect()  # what start-up left as garbage goes now, not kept forever
    gc.freeze()
