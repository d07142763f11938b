"""Moving a database's rows to another engine: every table read in key order, in chunks, and
written back with ``ON CONFLICT DO NOTHING``, so that an interrupted import can simply be run
again."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from receiver.store.tx import Tx, marks

#: Every table, parents before children, with its columns; the first are its key.
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "meta": (("key",), ("value",)),
    "destinations": (("name",), ("state", "reason", "updated_at", "last_error")),
    "receipts": (
        ("id",),
        (
            "source",
            "via",
            "received_at",
            "peer",
            "client",
            "headers",
            "body",
            "body_sha256",
            "event_ids",
            "duplicate",
        ),
    ),
    "events": (
        ("id",),
        (
            "source",
            "kind",
            "type",
            "task_id",
            "task_type",
            "status",
            "business_id",
            "labels",
            "result_urls",
            "flagged",
            "received_at",
            "via",
            "receipt_id",
            "duplicates",
            "status_rank",
        ),
    ),
    "deliveries": (
        ("id",),
        (
            "event_id",
            "destination",
            "source",
            "task_id",
            "state",
            "attempts",
            "tries",
            "next_attempt_at",
            "lease_owner",
            "lease_expires_at",
            "last_status",
            "last_error",
            "created_at",
            "updated_at",
            "message_id",
        ),
    ),
    "attempts": (
        ("id",),
        (
            "delivery_id",
            "number",
            "started_at",
            "duration_ms",
            "ok",
            "status_code",
            "error",
            "response_headers",
            "response_body",
        ),
    ),
    "tasks": (
        ("source", "task_id"),
        (
            "business_id",
            "state",
            "event_id",
            "created_at",
            "last_seen_at",
            "expires_at",
            "next_check_at",
            "checks",
            "lease_owner",
            "lease_expires_at",
            "last_error",
            "updated_at",
        ),
    ),
    "batches": (
        ("id",),
        (
            "state",
            "expected",
            "closed",
            "deadline",
            "created_at",
            "updated_at",
            "finished_at",
            "event_id",
        ),
    ),
    "batch_tasks": (
        ("batch_id", "source", "task_id"),
        ("status", "event_id", "added_at"),
    ),
    "rejected": (
        ("id",),
        (
            "source",
            "received_at",
            "peer",
            "client",
            "headers",
            "body",
            "status",
            "code",
            "message",
            "field",
            "retries",
            "retried_at",
            "outcome",
            "retry_error",
            "event_ids",
        ),
    ),
    "kept_files": (
        ("event_id", "position"),
        (
            "url",
            "state",
            "attempts",
            "next_attempt_at",
            "lease_owner",
            "lease_expires_at",
            "storage_key",
            "size",
            "content_type",
            "sha256",
            "last_error",
            "kept_at",
            "created_at",
            "updated_at",
        ),
    ),
}
#: Columns of bytes, written as base64 text.
BINARY = {
    ("receipts", "body"),
    ("receipts", "body_sha256"),
    ("attempts", "response_body"),
    ("rejected", "body"),
}
CHUNK = 500

Reading = Callable[[], AbstractAsyncContextManager[Tx]]


async def export_rows(reading: Reading) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Every row of every table as (table, {column: JSON-ready value}), in key order."""
    for table, (key, rest) in TABLES.items():
        columns = (*key, *rest)
        after: tuple[Any, ...] | None = None
        while True:
            where, parameters = "", list[Any]()
            if after is not None:
                # (a, b) > (x, y), spelled out for engines without row comparison.
                where = "WHERE " + " OR ".join(
                    "(" + " AND ".join([*(f"{k} = ?" for k in key[:i]), f"{key[i]} > ?"]) + ")"
                    for i in range(len(key))
                )
                for i in range(len(key)):
                    parameters.extend(after[: i + 1])
            async with reading() as tx:
                found = await tx.fetch(
                    f"SELECT {', '.join(columns)} FROM {table} {where}"  # noqa: S608
                    f" ORDER BY {', '.join(key)} LIMIT ?",
                    [*parameters, CHUNK],
                )
            for row in found:
                yield table, {c: _encode(table, c, v) for c, v in zip(columns, row, strict=True)}
            if len(found) < CHUNK:
                break
            after = tuple(found[-1][: len(key)])


async def import_rows(tx: Tx, table: str, found: Sequence[dict[str, Any]]) -> None:
    """Insert the rows of ``table`` that are not there yet."""
    key, rest = TABLES[table]
    columns = (*key, *rest)
    await tx.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(len(columns))})"  # noqa: S608
        " ON CONFLICT DO NOTHING",
        [[_decode(table, c, row.get(c)) for c in columns] for row in found],
    )
    if table == "attempts" and tx.dialect.after_import:
        await tx.execute(tx.dialect.after_import)


async def counts(tx: Tx) -> dict[str, int]:
    """How many rows each table holds."""
    found = {}
    for table in TABLES:
        [(count,)] = await tx.fetch(f"SELECT COUNT(*) FROM {table}")  # noqa: S608
        found[table] = int(count)
    return found


def _encode(table: str, column: str, value: Any) -> Any:
    if (table, column) in BINARY and value is not None:
        return base64.b64encode(bytes(value)).decode()
    return value


def _decode(table: str, column: str, value: Any) -> Any:
    if (table, column) in BINARY and value is not None:
        return base64.b64decode(value, validate=True)
    return value
