"""A real PostgreSQL server for the tests: an isolated schema per test, dropped afterwards.

``PHOTOHOOK_TEST_POSTGRES_URL`` names the server (default: the CI machine's). Where none answers
the tests skip, saying why; with ``CI`` set they fail instead, since CI must run them.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

POSTGRES_URL = os.environ.get(
    "PHOTOHOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@functools.cache
def unreachable() -> str | None:
    """Why no PostgreSQL server can be used, or None."""

    async def probe() -> None:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"no PostgreSQL server at PHOTOHOOK_TEST_POSTGRES_URL ({exc})"
    return None


def require_postgres() -> None:
    reason = unreachable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the PostgreSQL tests")
    pytest.skip(reason)


def with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("search_path", schema)])))


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def isolated_schema() -> Iterator[str]:
    """A database URL whose tables live in a new schema of their own."""
    require_postgres()
    schema = f"photohook_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(f"CREATE SCHEMA {schema}"))
    try:
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        asyncio.run(_admin(f"DROP SCHEMA {schema} CASCADE"))
