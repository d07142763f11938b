"""Versioned schema migrations: ``sql/<engine>/NNNN_name.sql``, applied in order, once each."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources

from receiver.errors import NoDatabase, StoreError

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


def not_migrated(todo: list[Migration]) -> StoreError:
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
    return StoreError(f"the database needs migrations ({names}); run 'photohook migrate' first")


def no_database(database: str) -> NoDatabase:
    return NoDatabase(
        f"no photohook database at {database}: run 'photohook migrate' (or 'photohook serve') "
        "first to create it, or give the database with --db or PHOTOHOOK_DATABASE_URL"
    )
