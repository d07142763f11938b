"""What only the PostgreSQL store does."""

from __future__ import annotations

import asyncio
import secrets
import time
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from receiver.store import open_store
from receiver.store.postgres import PostgresStore

from .factories import receipt


async def test_planner_statistics_are_refreshed_as_the_tables_grow(postgres_url: str) -> None:
    """Without statistics PostgreSQL plans the lookup of a batch's tasks as full scans, and
    ingest slows down as the tables grow; autovacuum may be off, so the store analyzes."""
    store = open_store(postgres_url)
    await store.open()
    admin = await asyncpg.connect(postgres_url)
    try:
        last_analyze = (
            "SELECT last_analyze FROM pg_stat_user_tables"
            " WHERE relname = 'events' AND schemaname = current_schema()"
        )
        await asyncio.gather(*(store.store(receipt(f"early-{i}")) for i in range(500)))
        await asyncio.sleep(0.5)
        assert await admin.fetchval(last_analyze) is None
        await asyncio.gather(*(store.store(receipt(f"later-{i}")) for i in range(600)))
        for _ in range(50):
            if await admin.fetchval(last_analyze) is not None:
                break
            await asyncio.sleep(0.1)
        assert await admin.fetchval(last_analyze) is not None
    finally:
        await admin.close()
        await store.close()


async def test_the_server_probes_the_stores_connections_long_before_the_systems_two_hours(
    postgres_url: str,
) -> None:
    """A session whose process died while the network was down holds its locks until the server
    notices the peer is gone; keepalives make that about a minute."""
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        async with store._reading() as tx:
            settings = dict(
                await tx.fetch(
                    "SELECT name, setting FROM pg_settings WHERE name LIKE 'tcp_keepalives_%'"
                )
            )
    finally:
        await store.close()
    assert settings == {
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
    }


async def test_sessions_the_server_will_not_let_it_end_are_left_to_the_servers_timeouts(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Ending the sessions it gave up on is the store's own clean-up: if the server refuses
    (here, a session of a superuser, which another role may not end), the store says so and
    carries on rather than failing every operation after."""
    role = f"photohook_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_url)
    schema = await admin.fetchval("SELECT current_schema()")
    await admin.execute(
        f"CREATE ROLE {role} LOGIN; GRANT pg_read_all_stats TO {role};"
        f" GRANT ALL ON SCHEMA {schema} TO {role}"
    )
    parts = urlsplit(postgres_url)
    store = PostgresStore(
        urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
    )
    try:
        await store.open()
        # As if the store had given up on the superuser's session: the server refuses to end it.
        store._abandoned[admin.get_server_pid()] = time.monotonic()
        await store.sync_destinations(["app"])
        assert store._abandoned == {}
        assert "cannot end the database sessions this process gave up on" in caplog.text
        assert await admin.fetchval("SELECT 1") == 1
    finally:
        await store.close()
        await admin.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
        await admin.close()
