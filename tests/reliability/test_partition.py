"""PostgreSQL out of reach for longer than a request: the network to it drops every byte, with
no error to say so, and when it comes back the connections that were open stay dead (as after a
failover). Callbacks meanwhile are answered 503 in time, never 500 and never left hanging; once
the database is reachable again photohook stores and delivers without a restart, and nothing
acknowledged is lost."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from receiver.store import postgres
from receiver.store.postgres import WRITE_TIMEOUT, PostgresStore
from receiver.web.ingest import COMMIT_TIMEOUT
from tests.integration.servers import Sink, running

from .helpers import Serve, fotor_body, run_cli, send_all, sink_config, wait_until
from .partition import Partition


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


@pytest.mark.timeout(180)
def test_a_partitioned_database_gets_503_then_heals_without_a_restart(
    tmp_path: Path, postgres_url: str
) -> None:
    parts = urlsplit(postgres_url)
    sink = Sink()
    with (
        Partition(parts.hostname or "127.0.0.1", parts.port or 5432) as network,
        running(sink.app, lifespan="off") as sink_url,
    ):
        env = {"PHOTOHOOK_DATABASE_URL": _through(postgres_url, network.port)}
        (tmp_path / "photohook.toml").write_text(sink_config(sink_url))
        serve = Serve(tmp_path, env=env)
        serve.start()
        try:
            url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path, env=env)
            hook = url.stdout.strip()
            traffic = asyncio.run(send_all(hook, [fotor_body(i) for i in range(20)], concurrency=4))
            assert traffic.statuses == Counter({200: 20})

            network.cut()
            started = time.monotonic()
            cut = asyncio.run(
                send_all(hook, [fotor_body(i, prefix="cut") for i in range(8)], concurrency=8)
            )
            # All at once, each waiting at most the commit's deadline.
            assert time.monotonic() - started < COMMIT_TIMEOUT + 3
            assert cut.statuses == Counter({503: 8}), cut.statuses
            network.mend()

            def stores() -> bool:
                probe = asyncio.run(send_all(hook, [fotor_body(0, prefix="probe")], concurrency=1))
                return probe.statuses == Counter({200: 1})

            assert wait_until(stores, within=WRITE_TIMEOUT + 10, every=1)
            bodies = [fotor_body(i, prefix="cut") for i in range(8)]  # the provider's retries
            after = asyncio.run(send_all(hook, bodies, concurrency=4))
            assert after.statuses == Counter({200: 8})
            acknowledged = {*traffic.acknowledged, *after.acknowledged}

            def delivered() -> set[str]:
                return {r.headers["webhook-id"] for r in list(sink.received)}

            assert wait_until(lambda: delivered() >= acknowledged, within=WRITE_TIMEOUT + 20)
        finally:
            serve.stop()
    log = serve.log.read_text()
    assert "the database did not answer in time" in log
    assert "database session(s) this process had given up on" in log
    assert "Traceback" not in log


async def test_sessions_given_up_on_are_ended_once_the_database_answers_again(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction the partition cut off lives on in the server after photohook gave up on it,
    holding its locks: here a destination's, as a claim takes it, which would stop every worker's
    deliveries there. Once the network mends, the store ends that session before anything else,
    and the next claim gets the lock at once, not after the server's own timeouts (20 s idle in a
    transaction; none at all when the cut fell between a statement's messages)."""
    monkeypatch.setattr(postgres, "STATEMENT_TIMEOUT", 1.0)
    monkeypatch.setattr(postgres, "WRITE_TIMEOUT", 2.0)
    parts = urlsplit(postgres_url)
    bystander = await asyncpg.connect(postgres_url)  # same role, not the store's: left alone
    with Partition(parts.hostname or "127.0.0.1", parts.port or 5432) as network:
        store = PostgresStore(_through(postgres_url, network.port))
        await store.open()

        async def claim_cut_off() -> None:
            async with store._transaction() as tx:
                await tx.fetch("SELECT name FROM destinations FOR UPDATE")
                network.cut()
                await tx.fetch("SELECT 1")

        try:
            await store.sync_destinations(["sink"])
            with pytest.raises(TimeoutError):
                await claim_cut_off()
            network.mend()
            holders = await bystander.fetch(
                "SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE c.relname = 'destinations' AND l.mode = 'RowShareLock'"
            )
            assert len(holders) == 1  # the session cut off, still there

            claims, _ = await store.claim({"sink": 1}, "worker", 30.0, time.time())

            assert claims == []
            assert not await bystander.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", holders[0]["pid"]
            )
            assert await bystander.fetchval("SELECT 1") == 1
        finally:
            await store.close()
            await bystander.close()
