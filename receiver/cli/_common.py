"""What the commands share: the database they open, and how they print."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

import msgspec
import orjson

from receiver import eventloop
from receiver.config.settings import Settings
from receiver.store import Store, open_store

if TYPE_CHECKING:
    pass


T = TypeVar("T")


#: The filters of ``events`` (and of replaying by filter), as ``GET /api/events`` names them.
EVENT_FILTERS = ("source", "type", "status", "task_id", "business_id", "since", "until")


def with_store(
    settings: Settings, use: Callable[[Store], Awaitable[T]], *, create: bool = False
) -> T:
    """``use`` the database, which must exist: only ``migrate``, ``serve`` and ``worker`` make
    one, so that a command run in the wrong folder does not answer from a new, empty one (or
    print a URL under a key no server knows)."""

    async def run() -> T:
        store = open_store(settings.database_url)
        await store.open(create=create)
        try:
            return await use(store)
        finally:
            await store.close()

    return eventloop.run(run())


def no_source(settings: Settings, name: str) -> int:
    return fail(f"no source named {name!r} (have: {', '.join(settings.sources)})")


def fail(message: str) -> int:
    print(f"photohook: error: {message}", file=sys.stderr)
    return 1


@contextlib.contextmanager
def stdout_bytes() -> Iterator[IO[bytes]]:
    """Standard output for bytes, every one of them written by the time the block ends.

    Unbuffered (``python -u``, or ``PYTHONUNBUFFERED=1`` as containers often set it),
    ``sys.stdout.buffer`` is the raw file, whose ``write`` may take only part of what it is given
    and say so only in what it returns: ``events --json`` then came back cut short, with exit
    status 0. A buffered writer of its own on the same descriptor writes until all is out.
    """
    sys.stdout.flush()
    with open(sys.stdout.fileno(), "wb", closefd=False) as out:
        yield out


def print_json(value: Any) -> None:
    with stdout_bytes() as out:
        out.write(orjson.dumps(value, default=msgspec.to_builtins, option=orjson.OPT_INDENT_2))
        out.write(b"\n")


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str) -> None:
    if not rows:
        print(empty)
        return
    table = [tuple(header), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
