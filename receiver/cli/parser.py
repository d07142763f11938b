"""The ``photohook`` command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from receiver.__about__ import __version__
from receiver.cli import batches, database, operating, reading, service
from receiver.config.settings import ENVIRONMENT, Settings
from receiver.errors import PhotohookError
from receiver.store import BATCH_STATES, DELIVERY_STATES, TASK_STATES

_OUTPUT = (
    "Long commands (export, import, prune, replay by filter, rejected retry --all, send-test)\n"
    "show their progress on stderr while it is a terminal. Output piped into a reader that\n"
    "stops early ends quietly, with exit status 141."
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if not args.needs_settings:
            return int(args.command(Settings(), args))
        settings = Settings.load(
            config_file=args.config,
            database_url=args.db,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            log_level=getattr(args, "log_level", None),
            log_format=getattr(args, "log_format", None),
            migrate=not getattr(args, "no_migrate", False),
            processes=getattr(args, "processes", None),
            resolve_secrets=args.resolve_secrets,
            app_dir=getattr(args, "app_dir", None),
            # Imported by what delivers or checks (see cli/service.py): not by `serve --no-worker`.
            import_callables=False,
            metrics_port=getattr(args, "metrics_port", None),
        )
        if hasattr(args, "app_dir") and settings.app_dir is None:
            # The commands that import handlers do it from the working directory first, as
            # `python -m` would; an application embedding photohook keeps its own import path.
            settings = replace(settings, app_dir=Path.cwd())
        result: int = args.command(settings, args)
        sys.stdout.flush()  # a closed pipe is found here, not at the interpreter's exit
        return result
    except BrokenPipeError:
        return _reader_went_away()
    except PhotohookError as exc:
        print(f"photohook: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _reader_went_away() -> int:
    """``photohook events | head -1``: the reader closed the pipe, which is no error of ours.

    Whatever is still buffered for stdout goes nowhere (as Python's documentation advises, or the
    interpreter reports the same error again as it exits), and the exit status is the one a shell
    reports for a command that SIGPIPE stopped.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def _parser() -> argparse.ArgumentParser:
    width = max(map(len, ENVIRONMENT)) + 1
    environment = "\n".join(f"  {name:<{width}} {meaning}" for name, meaning in ENVIRONMENT.items())
    parser = argparse.ArgumentParser(
        prog="photohook",
        description="Webhook receiver and event router for Fotor and Crop.photo callbacks.",
        epilog=f"environment variables:\n{environment}\n\n{_OUTPUT}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"photohook {__version__}")
    subcommands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="config file (env PHOTOHOOK_CONFIG)")
    common.add_argument("--db", metavar="URL", help="database URL (env PHOTOHOOK_DATABASE_URL)")

    def command(
        name: str,
        function: Callable[[Settings, argparse.Namespace], int],
        *,
        needs_settings: bool = True,
        resolve_secrets: bool = False,
    ) -> Any:
        sub = subcommands.add_parser(
            name, parents=[common] if needs_settings else [], help=function.__doc__
        )
        sub.description = function.__doc__
        sub.set_defaults(
            command=function, needs_settings=needs_settings, resolve_secrets=resolve_secrets
        )
        return sub

    # Only what signs, delivers or checks the configuration needs every secret variable set.
    serve = command("serve", service.serve, resolve_secrets=True)
    serve.add_argument("--host", help="address to listen on (env PHOTOHOOK_HOST; 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (env PORT; 8000)")
    serve.add_argument("--no-worker", action="store_true", help="receive only; deliver elsewhere")
    serve.add_argument(
        "--processes",
        type=_positive,
        help="processes sharing the port, each with its own worker (env WEB_CONCURRENCY; 1)",
    )
    worker = command("worker", service.worker, resolve_secrets=True)
    worker.add_argument("--host", help="address of --metrics-port (env PHOTOHOOK_HOST; 127.0.0.1)")
    worker.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve this process's /metrics on PORT (env PHOTOHOOK_METRICS_PORT; none)",
    )
    for sub in (serve, worker):
        sub.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
        sub.add_argument("--log-format", choices=["text", "json"])
        sub.add_argument(
            "--no-migrate",
            action="store_true",
            help="refuse to start on an unmigrated database instead of migrating it",
        )

    command("migrate", database.migrate)
    export = command("export", database.export)
    export.add_argument("--output", "-o", metavar="PATH", help="write here, not to stdout")
    import_ = command("import", database.import_)
    import_.add_argument("input", metavar="PATH", nargs="?", help="an export (default: stdin)")

    url = command("url", service.url)
    url.add_argument("source", metavar="SOURCE", help="a configured source name")
    url.add_argument(
        "--base-url",
        help="public base URL of photohook (env PHOTOHOOK_BASE_URL; "
        "default: http://HOST:PORT, where 'serve' listens)",
    )

    events = command("events", reading.events)
    _event_filters(events)
    events.add_argument("--limit", type=_positive, default=50, help="at most N events (50)")
    events.add_argument("--json", action="store_true", help="print a JSON array of events")

    event = command("event", reading.event)
    event.add_argument("event_id", metavar="EVENT_ID")
    event.add_argument(
        "--json", action="store_true", help="print it as GET /api/events/{id} answers"
    )

    deliveries = command("deliveries", reading.deliveries)
    deliveries.add_argument("--state", choices=DELIVERY_STATES)
    deliveries.add_argument("--event", metavar="EVENT_ID", help="only this event's deliveries")
    deliveries.add_argument("--destination", metavar="NAME", help="only this destination")
    deliveries.add_argument("--limit", type=_positive, default=100, help="at most N (100)")
    deliveries.add_argument("--json", action="store_true", help="print a JSON array")

    replay = command("replay", operating.replay)
    replay.add_argument(
        "event_id", metavar="EVENT_ID", nargs="?", help="the event; or give filters instead"
    )
    _event_filters(replay)
    replay.add_argument("--destination", metavar="NAME", help="only to this destination")
    replay.add_argument(
        "--new-id",
        action="store_true",
        help="send as a new message (a new webhook-id), for a receiver that must process it "
        "again; by default the event's id is kept, and a deduplicating receiver drops it",
    )

    retry = command("retry", operating.retry)
    retry.add_argument("delivery_id", metavar="DELIVERY_ID", nargs="?")
    retry.add_argument("--dead", action="store_true", help="every dead delivery")
    retry.add_argument("--destination", metavar="NAME", help="with --dead: of this destination")

    destinations = command("destinations", reading.destinations)
    destinations.add_argument("--json", action="store_true", help="print a JSON array")
    for name, function in (("pause", operating.pause), ("resume", operating.resume)):
        command(name, function).add_argument("name", metavar="NAME", help="a destination")

    track = command("track", operating.track)
    track.add_argument("source", metavar="SOURCE", help="a source with an api_key")
    track.add_argument("task_id", metavar="TASK_ID", help="Fotor taskId or Crop.photo job_id")
    track.add_argument("--business-id", help="your business id for the task")

    tasks = command("tasks", reading.tasks)
    tasks.add_argument("--state", choices=TASK_STATES)
    tasks.add_argument("--limit", type=_positive, default=100, help="at most N (100)")
    tasks.add_argument("--json", action="store_true", help="print a JSON array")

    listed = command("batches", batches.batches)
    listed.add_argument("--state", choices=BATCH_STATES)
    listed.add_argument("--limit", type=_positive, default=50, help="at most N (50)")
    listed.add_argument("--json", action="store_true", help="print a JSON array")
    _batch_actions(subcommands.add_parser("batch", help="create, close or show a batch of tasks"))

    send_test = command("send-test", operating.send_test)
    send_test.add_argument("source", metavar="SOURCE", help="a configured source (its provider)")
    send_test.add_argument("--url", required=True, help="where to send (photohook url SOURCE)")
    send_test.add_argument(
        "--status", choices=["completed", "failed", "in_progress"], default="completed"
    )
    send_test.add_argument("--task-type", default="upscale", help="Fotor task type (upscale)")
    send_test.add_argument("--count", type=_positive, default=1, help="callbacks to send (1)")
    send_test.add_argument("--concurrency", type=_positive, default=1, help="at once (1)")
    send_test.add_argument("--secret", help="X-WEBHOOK-SECRET to send (Crop.photo)")

    rejected = command("rejected", reading.rejected)
    rejected.epilog = (
        "A callback that passed authentication but was refused for what it sent (400, 413, 415,\n"
        "422) is kept, up to [server] max_rejected_per_source (10000) per source. Once the\n"
        "configuration or photohook is fixed, 'photohook rejected retry' runs it through ingest\n"
        "again: accepted, it becomes an ordinary event (deduplicated as usual)."
    )
    rejected.formatter_class = argparse.RawDescriptionHelpFormatter
    rejected.add_argument("--source", help="only this source's")
    rejected.add_argument("--limit", type=_positive, default=50, help="at most N (50)")
    rejected.add_argument("--json", action="store_true", help="print a JSON array")
    actions = rejected.add_subparsers(title="actions", metavar="ACTION")
    # Options given before the action must survive it: the action's parser sets no defaults.
    again = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    again.add_argument("--config", metavar="PATH", help="config file (env PHOTOHOOK_CONFIG)")
    again.add_argument("--db", metavar="URL", help="database URL (env PHOTOHOOK_DATABASE_URL)")
    rejected_retry = actions.add_parser(
        "retry",
        parents=[again],
        argument_default=argparse.SUPPRESS,
        help=operating.rejected_retry.__doc__,
        description=operating.rejected_retry.__doc__,
    )
    rejected_retry.set_defaults(command=operating.rejected_retry)
    rejected_retry.add_argument("rejected_id", metavar="ID", nargs="?", default=None)
    rejected_retry.add_argument(
        "--all",
        action="store_true",
        default=False,
        help="every one not accepted yet whose body was kept",
    )
    rejected_retry.add_argument("--source", help="with --all: only this source's")

    prune = command("prune", operating.prune)
    prune.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 30d")
    prune.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    check = command("check", service.check, resolve_secrets=True)
    check.add_argument(
        "--connect",
        action="store_true",
        help="also connect to each broker destination and the result store, and say which answer",
    )
    for sub in (serve, worker, check):
        sub.add_argument(
            "--app-dir",
            metavar="DIR",
            help="import handler and transform modules from DIR first "
            "(env PHOTOHOOK_APP_DIR; the working directory)",
        )
    # Needs no configuration: a secret is what one is missing while writing it.
    command("secret", service.secret, needs_settings=False)
    return parser


def _batch_actions(parser: argparse.ArgumentParser) -> None:
    """``photohook batch create|close|show``."""
    parser.description = "Create, close or show a batch of tasks (see also 'photohook batches')."
    actions = parser.add_subparsers(title="actions", required=True, metavar="ACTION")
    for name, function in (
        ("create", batches.create),
        ("close", batches.close),
        ("show", batches.show),
    ):
        action = actions.add_parser(name, help=function.__doc__, description=function.__doc__)
        action.set_defaults(command=function, needs_settings=True, resolve_secrets=False)
        action.add_argument("--config", metavar="PATH", help="config file (env PHOTOHOOK_CONFIG)")
        action.add_argument("--db", metavar="URL", help="database URL (env PHOTOHOOK_DATABASE_URL)")
        action.add_argument("batch_id", metavar="ID", help="the batch's id")
        if name == "create":
            action.add_argument(
                "--task",
                action="append",
                default=[],
                metavar="SOURCE:TASK_ID",
                help="a task of the batch (repeat it); with no --expected, these are all of it",
            )
            action.add_argument(
                "--expected", type=_positive, help="its size: complete once N tasks are final"
            )
            action.add_argument(
                "--deadline", help="expire it then if tasks are outstanding: '2h' or RFC 3339"
            )
            action.add_argument(
                "--open", action="store_true", help="more tasks will be added later"
            )
        if name == "show":
            action.add_argument(
                "--json", action="store_true", help="print it as GET /api/batches/{id} answers"
            )


def _event_filters(parser: argparse.ArgumentParser) -> None:
    """The filters of GET /api/events, as options."""
    parser.add_argument("--source", help="only this source")
    parser.add_argument("--type", help="only this event type (fotor.task.completed, ...)")
    parser.add_argument("--status", help="only this status (completed, failed, ...)")
    parser.add_argument("--task-id", help="only this task (Fotor taskId, Crop.photo job_id)")
    parser.add_argument("--business-id", help="only this business id")
    parser.add_argument("--since", metavar="TIME", help="received at or after (RFC 3339)")
    parser.add_argument("--until", metavar="TIME", help="received before (RFC 3339)")


def _port(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError("must be a port number, 1 to 65535")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number
