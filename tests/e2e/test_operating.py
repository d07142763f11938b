"""The operator's command line, as a subprocess: piped output, progress, what the database
commands say they did."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
from pathlib import Path

from receiver.store import open_store
from receiver.store.migrations import migrations
from tests.store.factories import receipt

from .process import COMMAND, run_cli


def fill(workdir: Path, events: int) -> None:
    """``events`` events (each its own task) in ``workdir``'s default SQLite database."""

    async def run() -> None:
        store = open_store(f"sqlite:///{workdir / 'photohook.db'}")
        await store.open()
        try:
            for first in range(0, events, 250):
                batch = range(first, min(first + 250, events))
                await asyncio.gather(*(store.store(receipt(f"task-{n}")) for n in batch))
        finally:
            await store.close()

    asyncio.run(run())


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    fill(tmp_path, 1500)  # each listing is several times what a pipe holds
    for args in (
        ["events", "--limit", "1500"],
        ["events", "--json", "--limit", "1500"],
        ["export"],
    ):
        with subprocess.Popen(
            [*COMMAND, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as child:
            assert child.stdout is not None and child.stderr is not None
            assert child.stdout.readline()  # `| head -1`
            child.stdout.close()
            status = child.wait(60)
            errors = child.stderr.read().decode()
        assert "Traceback" not in errors, (args, errors)
        assert "BrokenPipeError" not in errors, (args, errors)
        assert status == 141, (args, status, errors)  # 128 + SIGPIPE, as a shell reports it


def test_migrate_says_whether_it_created_migrated_or_found_the_schema_up_to_date(
    tmp_path: Path,
) -> None:
    shipped = migrations("sqlite")
    latest = shipped[-1].version
    created = run_cli("migrate", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout == (
        f"created the database at sqlite:///photohook.db (schema version {latest})\n"
    )
    again = run_cli("migrate", cwd=tmp_path)
    assert again.stdout == f"sqlite:///photohook.db: already up to date (schema version {latest})\n"

    with contextlib.closing(sqlite3.connect(tmp_path / "older.db")) as older:
        older.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        for migration in shipped[:-1]:
            older.executescript(migration.sql)
            older.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00Z')",
                (migration.version, migration.name),
            )
        older.commit()
    migrated = run_cli("migrate", "--db", "sqlite:///older.db", cwd=tmp_path)
    assert migrated.stdout == (
        f"migrated sqlite:///older.db from schema version {shipped[-2].version} to {latest}\n"
    )
