"""What only the PostgreSQL store does."""

from __future__ import annotations

import asyncio

import asyncpg

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
