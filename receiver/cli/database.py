"""The database commands: ``migrate``, and ``export`` / ``import`` to move a database between
engines (SQLite to PostgreSQL, say) as a stream of JSON lines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import IO, Any

import orjson

from receiver import eventloop
from receiver.cli._common import stdout_bytes, with_store
from receiver.cli.progress import Progress
from receiver.config.settings import Settings
from receiver.errors import StoreError
from receiver.redact import url as masked
from receiver.store import SchemaChange, Store, open_store
from receiver.store.transfer import TABLES

FORMAT = "photohook-export"
VERSION = 1
CHUNK = 500


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Apply the database's pending migrations (serve and worker do it at start-up unless
    --no-migrate)."""

    async def schema(store: Store) -> SchemaChange | None:
        return store.schema

    change = with_store(settings, schema, create=True)
    assert change is not None  # set by opening the store
    where = masked(settings.database_url)
    if change.before == 0:
        print(f"created the database at {where} (schema version {change.after})")
    elif change.before < change.after:
        print(f"migrated {where} from schema version {change.before} to {change.after}")
    else:
        print(f"{where}: already up to date (schema version {change.after})")
    return 0


def export(settings: Settings, args: argparse.Namespace) -> int:
    """Write every row of the database as JSON lines (stop serve and worker first)."""

    async def run(store: Store, out: IO[bytes], progress: Progress) -> dict[str, int]:
        if progress.shown:
            progress.total = sum((await store.table_counts()).values())
        written: dict[str, int] = {}
        out.write(orjson.dumps({"format": FORMAT, "version": VERSION}) + b"\n")
        async for table, row in store.export_rows():
            out.write(orjson.dumps({"table": table, "row": row}) + b"\n")
            written[table] = written.get(table, 0) + 1
            progress.advance()
        out.write(orjson.dumps({"end": written}) + b"\n")
        return written

    with Progress("exporting", unit="rows") as progress:
        if args.output:
            with open(args.output, "wb") as out:
                written = with_store(settings, lambda store: run(store, out, progress))
        else:
            with stdout_bytes() as stdout:
                written = with_store(settings, lambda store: run(store, stdout, progress))
    print(f"exported {_summary(written)} in {progress.seconds:.1f} s", file=sys.stderr)
    return 0


def import_(settings: Settings, args: argparse.Namespace) -> int:
    """Read an export into this database, adding the rows it does not hold yet; safe to run
    again after an interruption."""
    source = open(args.input, "rb") if args.input else sys.stdin.buffer  # noqa: SIM115
    try:
        with Progress("importing", unit="rows") as progress:
            if progress.shown and source.seekable():
                progress.total = max(_rows_in(source), 0)
            return eventloop.run(_import(settings, source, progress))
    finally:
        if args.input:
            source.close()


def _rows_in(export: IO[bytes]) -> int:
    """How many rows an export file holds: its lines but the first and the last. Only for a
    seekable file: a pipe (``<(zcat export.gz)``, stdin) would be read up and lost."""
    lines = sum(block.count(b"\n") for block in iter(lambda: export.read(1 << 20), b""))
    export.seek(0)
    return lines - 2


async def _import(settings: Settings, lines: Iterable[bytes], progress: Progress) -> int:
    def fail(message: str) -> int:
        progress.finish()
        return _fail(message)

    store = open_store(settings.database_url)
    await store.open(migrate=settings.migrate)
    try:
        before = await store.table_counts()
        read: dict[str, int] = {}
        end: dict[str, int] | None = None
        table, chunk = "", list[dict[str, Any]]()
        for number, line in enumerate(lines, start=1):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                return fail(f"line {number}: not JSON ({exc})")
            if number == 1:
                if record != {"format": FORMAT, "version": VERSION}:
                    return fail("line 1: not a photohook export (version 1)")
                continue
            if end is not None:
                return fail(f"line {number}: more after the end line")
            if isinstance(record, dict) and isinstance(record.get("end"), dict):
                end = record["end"]
                continue
            if not isinstance(record, dict) or record.get("table") not in TABLES:
                return fail(f"line {number}: expected a row of a known table or the end line")
            if not isinstance(record.get("row"), dict):
                return fail(f"line {number}: its row is not an object")
            if record["table"] != table or len(chunk) >= CHUNK:
                if chunk:
                    await _import_chunk(store, table, chunk)
                    progress.advance(len(chunk))
                table, chunk = record["table"], []
            chunk.append(record["row"])
            read[table] = read.get(table, 0) + 1
        if chunk:
            await _import_chunk(store, table, chunk)
            progress.advance(len(chunk))
        progress.finish()
        if end is None:
            return fail(
                f"the export ends early (no end line) after {_summary(read)}; "
                "what was read is imported: import the whole export again"
            )
        if end != read:
            return fail(f"the end line counts {_summary(end)} but the file holds {_summary(read)}")
        held = await store.table_counts()
        short = [name for name, count in read.items() if held.get(name, 0) < count]
        if short:
            return fail(f"fewer rows in the database than imported: {', '.join(short)}")
    finally:
        await store.close()
    added = {table: held[table] - before.get(table, 0) for table in read}
    print(
        f"imported {_added(read, added)} into {masked(settings.database_url)}"
        f" in {progress.seconds:.1f} s"
    )
    return 0


def _added(read: dict[str, int], added: dict[str, int]) -> str:
    """``0 new events, 56 already present; ...``: nobody else writes while an import runs, so
    what the tables gained is what the import added."""
    parts = []
    for table, count in read.items():
        new = min(added[table], count)
        present = f", {count - new} already present" if new < count else ""
        parts.append(f"{new} new {table}{present}")
    return "; ".join(parts) or "nothing"


async def _import_chunk(store: Store, table: str, chunk: list[dict[str, Any]]) -> None:
    try:
        await store.import_rows(table, chunk)
    except ValueError as exc:  # a binary column that is not base64
        raise StoreError(f"cannot import into {table}: {exc}") from exc


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {table}" for table, count in counts.items()) or "nothing"


def _fail(message: str) -> int:
    print(f"photohook: error: {message}", file=sys.stderr)
    return 1
