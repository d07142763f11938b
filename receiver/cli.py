"""The ``photohook`` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson

from .__about__ import __version__
from .errors import PhotohookError
from .events import Event, format_time
from .settings import ENVIRONMENT, Settings
from .store import EventQuery, Store, open_store

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(
            config_file=args.config,
            database_url=args.db,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            log_level=getattr(args, "log_level", None),
            log_format=getattr(args, "log_format", None),
        )
        result: int = args.command(settings, args)
        return result
    except PhotohookError as exc:
        print(f"photohook: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the receiver."""
    from .logs import configure_logging
    from .server import serve

    configure_logging(settings.log_level, settings.log_format)
    serve(settings)
    return 0


def _url(settings: Settings, args: argparse.Namespace) -> int:
    """Print the URL to register with the provider for SOURCE."""
    from .app import url_tokens

    source = settings.sources.get(args.source)
    if source is None:
        names = ", ".join(settings.sources)
        print(f"photohook: error: no source named {args.source!r} (have: {names})", file=sys.stderr)
        return 2
    base = args.base_url.rstrip("/")
    if "token" not in source.require:
        print(f"{base}/hooks/{source.name}")
        return 0
    tokens = _with_store(settings, lambda store: url_tokens(settings, store))
    print(f"{base}/hooks/{source.name}/{tokens.token(source.name)}")
    return 0


def _events(settings: Settings, args: argparse.Namespace) -> int:
    """List stored events, newest first."""
    query = EventQuery(
        source=args.source, status=args.status, task_id=args.task_id, limit=args.limit
    )
    events = _with_store(settings, lambda store: store.list_events(query))
    if args.json:
        sys.stdout.buffer.write(
            orjson.dumps([event.to_dict() for event in events], option=orjson.OPT_INDENT_2)
        )
        sys.stdout.write("\n")
    else:
        _print_table(events)
    return 0


def _check(settings: Settings, args: argparse.Namespace) -> int:
    """Validate the configuration and print what it sets up."""
    print(f"config: {settings.config_file or '(none; built-in defaults)'}")
    print(f"database: {settings.database_url}")
    print(f"max body: {settings.max_body_bytes} bytes")
    proxies = ", ".join(str(n) for n in settings.trusted_proxies.networks) or "(none)"
    print(f"trusted proxies: {proxies}")
    for name, source in settings.sources.items():
        checks = ", ".join(sorted(source.require))
        print(f"source {name}: kind {source.kind}, checks: {checks}")
        if "ip" in source.require:
            allowed = ", ".join(str(n) for n in source.allow_ips.networks)
            print(f"  allow_ips: {allowed}")
        if "secret" in source.require:
            print(f"  secrets: {len(source.secrets)}")
    print("ok")
    return 0


def _with_store(settings: Settings, use: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = open_store(settings.database_url)
        await store.open()
        try:
            return await use(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _print_table(events: list[Event]) -> None:
    if not events:
        print("no events")
        return
    rows = [("ID", "RECEIVED", "SOURCE", "TYPE", "TASK", "BUSINESS ID", "RESULTS")]
    rows += [
        (
            event.id,
            format_time(event.received_at)[:19] + "Z",
            event.source,
            event.type,
            event.task_id,
            event.business_id or "-",
            str(len(event.result_urls)),
        )
        for event in events
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _parser() -> argparse.ArgumentParser:
    environment = "\n".join(f"  {name:<24} {meaning}" for name, meaning in ENVIRONMENT.items())
    parser = argparse.ArgumentParser(
        prog="photohook",
        description="Webhook receiver and event router for Fotor and Crop.photo callbacks.",
        epilog=f"environment variables:\n{environment}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"photohook {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="config file (env PHOTOHOOK_CONFIG)")
    common.add_argument("--db", metavar="URL", help="database URL (env PHOTOHOOK_DATABASE_URL)")

    def command(name: str, function: Callable[[Settings, argparse.Namespace], int]) -> Any:
        sub = commands.add_parser(name, parents=[common], help=function.__doc__)
        sub.description = function.__doc__
        sub.set_defaults(command=function)
        return sub

    serve = command("serve", _serve)
    serve.add_argument("--host", help="address to listen on (env PHOTOHOOK_HOST; 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (env PORT; 8000)")
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--log-format", choices=["text", "json"])

    url = command("url", _url)
    url.add_argument("source", metavar="SOURCE", help="a configured source name")
    url.add_argument(
        "--base-url",
        default=os.environ.get("PHOTOHOOK_BASE_URL", DEFAULT_BASE_URL),
        help=f"public base URL of photohook (env PHOTOHOOK_BASE_URL; {DEFAULT_BASE_URL})",
    )

    events = command("events", _events)
    events.add_argument("--source", help="only this source")
    events.add_argument("--status", help="only this status (completed, failed, ...)")
    events.add_argument("--task-id", help="only this task (Fotor taskId, Crop.photo job_id)")
    events.add_argument("--limit", type=_positive, default=50, help="at most N events (50)")
    events.add_argument("--json", action="store_true", help="print a JSON array of events")

    command("check", _check)
    return parser


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number
