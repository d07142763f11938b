"""What the shared SQL needs from an engine: a transaction to run statements in, and the few
places where the engines' SQL differs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few spellings that differ between engines. Statements are written with ``?``
    placeholders; an engine that numbers them (``$1``) rewrites them itself."""

    name: str
    #: A query whose one value is true when table ``{table}`` exists.
    table_exists: str
    #: A condition: the JSON array in column ``{column}`` holds the text parameter.
    json_array_holds: str
    #: Appended to a SELECT to lock the rows it returns, skipping rows others have locked.
    skip_locked: str = ""
    #: Appended to a SELECT to lock the rows it returns, waiting for others' locks.
    for_update: str = ""
    #: As ``for_update``, but letting others insert rows that refer to the locked ones (whose
    #: foreign key check holds a weaker lock that this would otherwise wait for: a deadlock).
    for_no_key_update: str = ""
    #: Run after attempts were imported with their ids (a sequence to move past them).
    after_import: str = ""
    #: Put before a column so that a condition on it does not choose an index (SQLite's unary
    #: ``+``), where the engine without statistics would choose the wrong one.
    unindexed: str = ""
    #: The integer part of a non-negative number ``{value}`` (PostgreSQL's CAST rounds).
    integer_part: str = "CAST({value} AS INTEGER)"


class Tx(Protocol):
    """Statements run in one transaction (or, for reads, on one connection)."""

    dialect: Dialect

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Run one statement; how many rows it changed."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""

    async def fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        """Run a query; its rows."""

    async def notify(self) -> None:
        """Wake the workers of other processes once this transaction commits (deliveries
        became due)."""


def marks(count: int) -> str:
    """``count`` placeholders for an IN list."""
    return ", ".join("?" * count)


def conditions(*given: tuple[str, Any]) -> tuple[list[str], list[Any]]:
    """``"column op ?"`` and its parameter for each ``("column op", value)`` whose value is
    given (not None)."""
    present = [(condition, value) for condition, value in given if value is not None]
    return [f"{condition} ?" for condition, _ in present], [value for _, value in present]
