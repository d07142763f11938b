"""What only the PostgreSQL store does."""

from __future__ import annotations

import asyncio

import asyncpg

from receiver.store import open_store

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
