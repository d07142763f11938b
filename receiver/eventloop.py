"""Running the commands' coroutines on the event loop ``serve`` uses: uvloop where installed
(``uvicorn[standard]`` brings it), else asyncio's own."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] depends on it on Linux and macOS
        return asyncio.run(main)
    return uvloop.run(main)
