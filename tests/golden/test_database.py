"""A database written by an earlier photohook (tests/fixtures/databases/), on SQLite and on
PostgreSQL: today's code migrates a copy of it, reads it back through the admin API and exports
it, and each result is compared with its golden file."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import pytest

from receiver import Settings, create_app
from receiver.cli.parser import main as photohook
from tests.helpers import asgi_client
from tests.postgres import POSTGRES_URL, isolated_schema

from .golden import check, check_json
from .make_databases import OUT as DATABASES
from .make_databases import SCHEMA_MARK

LOOPBACK = ("127.0.0.1", 40000)


async def restore(url: str) -> None:
    """Load the PostgreSQL dump into the schema that ``url`` searches."""
    schema = dict(parse_qsl(urlsplit(url).query))["search_path"]
    dump = (DATABASES / "photohook.postgresql.sql").read_text(encoding="utf-8")
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(dump.replace(SCHEMA_MARK, schema))
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def reference_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A copy of the reference database, not yet migrated by today's code."""
    if request.param == "sqlite":
        shutil.copyfile(DATABASES / "photohook.sqlite", tmp_path / "photohook.db")
        yield f"sqlite:///{tmp_path / 'photohook.db'}"
        return
    with isolated_schema() as url:
        asyncio.run(restore(url))
        yield url


def engine(url: str) -> str:
    return url.partition(":")[0]


async def migrations(url: str) -> list[str]:
    """The schema migrations the database records as applied."""
    query = "SELECT version, name FROM schema_migrations ORDER BY version"
    if engine(url) == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            found = connection.execute(query).fetchall()
    else:
        connection = await asyncpg.connect(url)
        try:
            found = await connection.fetch(query)
        finally:
            await connection.close()
    return [f"{version:04d}_{name}" for version, name in found]


async def test_the_reference_database_migrates_and_reads_back_as_the_goldens(
    reference_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = reference_database
    assert await asyncio.to_thread(photohook, ["migrate", "--db", url]) == 0
    check_json(f"database/migrations.{engine(url)}.json", await migrations(url))
    export = tmp_path / "export.jsonl"
    assert await asyncio.to_thread(photohook, ["export", "--db", url, "-o", str(export)]) == 0
    capsys.readouterr()
    check("database/export.jsonl", export.read_text(encoding="utf-8"))

    settings = Settings.load(database_url=url, environ={"PHOTOHOOK_SECRET_KEYS": "golden-key"})
    async with asgi_client(create_app(settings, worker=False), client=LOOPBACK) as client:

        async def get(path: str) -> Any:
            response = await client.get(path)
            assert response.status_code == 200, response.text
            return response.json()

        events = await get("/api/events?limit=100")
        assert events["next_cursor"] is None  # the page holds them all
        details = {e["id"]: await get(f"/api/events/{e['id']}") for e in events["items"]}
        deliveries = await get("/api/deliveries?limit=100")
        assert deliveries["next_cursor"] is None
        tasks = await get("/api/tasks?limit=100")
    assert len(details) == 12 and len(deliveries["items"]) == 33
    check_json("database/events.json", events)
    check_json("database/event-details.json", details)
    check_json("database/deliveries.json", deliveries)
    check_json("database/tasks.json", tasks)
