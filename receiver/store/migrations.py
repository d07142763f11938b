"""Versioned schema migrations: ``sql/<engine>/NNNN_name.sql``, applied in order, once each."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from receiver.errors import NoDatabase, StoreError
from receiver.events import format_time
from receiver.store.tx import Tx

logger = logging.getLogger("photohook.store")

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The statements of the script, split where SQLite says a statement is complete."""
        statements, current = [], ""
        for line in self.sql.splitlines(keepends=True):
            current += line
            if sqlite3.complete_statement(current):
                if current.strip():
                    statements.append(current.strip())
                current = ""
        if current.strip():
            statements.append(current.strip())
        return statements


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """What opening a database did to its schema: from version ``before`` (0: none, a new
    database) to ``after``."""

    before: int
    after: int

    @classmethod
    def of(cls, applied: Collection[int], todo: list[Migration]) -> SchemaChange:
        before = max(applied, default=0)
        return cls(before, max((m.version for m in todo), default=before))


def migrations(engine: str) -> list[Migration]:
    """The migrations shipped for ``engine``, in version order."""
    found = []
    for entry in resources.files(__package__).joinpath("sql", engine).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    return found


def pending(engine: str, applied: Mapping[int, str]) -> list[Migration]:
    """The migrations of ``engine`` not yet applied to a database whose ``schema_migrations``
    holds ``applied`` (version: name); raises StoreError if the database is newer than this
    photohook, or was migrated by a build whose migrations differ from these."""
    known = migrations(engine)
    newest = max((m.version for m in known), default=0)
    if applied and max(applied) > newest:
        raise StoreError(
            f"the database schema is at version {max(applied)}, newer than this photohook "
            f"knows ({newest}); upgrade photohook"
        )
    by_version = {m.version: m for m in known}
    for version, name in sorted(applied.items()):
        shipped = by_version.get(version)
        if shipped is None or shipped.name != name:
            ours = (
                f"this photohook's migration {version:04d} is {version:04d}_{shipped.name}"
                if shipped
                else f"this photohook has no migration {version:04d}"
            )
            raise StoreError(
                f"the database has migration {version:04d}_{name} applied, but {ours}: it was "
                "migrated by another build of photohook, so its schema is not the one this build "
                "expects; use that build, or a database (or backup) migrated by this one"
            )
    return [m for m in known if m.version not in applied]


async def has_schema(tx: Tx) -> bool:
    """Whether the database holds a photohook schema: a migration applied."""
    [(table,)] = await tx.fetch(tx.dialect.table_exists.format(table="schema_migrations"))
    return bool(table and await tx.fetch("SELECT 1 FROM schema_migrations LIMIT 1"))


async def migrate(
    tx: Tx, *, apply: bool, run_script: Callable[[Migration], Awaitable[object]]
) -> SchemaChange:
    """Apply the pending migrations of the engine of ``tx`` (run by ``run_script``, the
    engine's way to run a script), recording each in ``schema_migrations``, in one transaction;
    with ``apply`` false, raise StoreError if any is pending."""
    await tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = {
        int(version): str(name)
        for version, name in await tx.fetch("SELECT version, name FROM schema_migrations")
    }
    todo = pending(tx.dialect.name, applied)
    if todo and not apply:
        raise not_migrated(todo)
    for migration in todo:
        await run_script(migration)
        await tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, format_time(datetime.now(UTC))),
        )
        logger.info("applied migration %04d_%s", migration.version, migration.name)
    return SchemaChange.of(applied, todo)


def not_migrated(todo: list[Migration]) -> StoreError:
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
    return StoreError(f"the database needs migrations ({names}); run 'photohook migrate' first")


def no_database(database: str) -> NoDatabase:
    return NoDatabase(
        f"no photohook database at {database}: run 'photohook migrate' (or 'photohook serve') "
        "first to create it, or give the database with --db or PHOTOHOOK_DATABASE_URL"
    )
