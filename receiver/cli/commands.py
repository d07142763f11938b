"""What each ``photohook`` command does; ``cli.py`` parses the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any, TypeVar

import msgspec
import orjson

from receiver import eventloop, redact
from receiver.cli.progress import Progress
from receiver.config.durations import format_duration
from receiver.config.settings import Settings
from receiver.delivery.brokers import publisher_for, scrub
from receiver.destinations import BrokerDestination, HTTPDestination
from receiver.errors import PhotohookError, UsageError
from receiver.events import Event, format_time, format_timestamp
from receiver.routing import Router
from receiver.states import CHECKED, CLAIMABLE, DestinationState
from receiver.store import Delivery, DeliveryQuery, EventQuery, Pruned, Store, open_store

if TYPE_CHECKING:
    from receiver.observability.metrics import Metrics

T = TypeVar("T")

#: The filters of ``events`` (and of replaying by filter), as ``GET /api/events`` names them.
EVENT_FILTERS = ("source", "type", "status", "task_id", "business_id", "since", "until")


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the receiver, and the delivery worker unless --no-worker."""
    from receiver.observability.logs import configure_logging
    from receiver.observability.metrics import drop_created_series
    from receiver.web.server import serve

    if not args.no_worker:
        settings = settings.with_callables()  # a broken handler stops serve at once
    configure_logging(settings.log_level, settings.log_format)
    drop_created_series()
    serve(settings, worker=not args.no_worker)
    return 0


def worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run a delivery worker alone (beside 'serve --no-worker', or several); with
    --metrics-port, it serves its own /metrics."""
    from receiver.background import Background
    from receiver.observability.logs import configure_logging
    from receiver.observability.metrics import Metrics, drop_created_series

    settings = settings.with_callables()
    configure_logging(settings.log_level, settings.log_format)
    drop_created_series()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        store = open_store(settings.database_url)
        await store.open(migrate=settings.migrate)
        try:
            metrics = Metrics(settings.sources, settings.destinations)
            background = Background(settings, store, Router(settings.routes), metrics=metrics)
            async with _metrics_server(settings, metrics, store):
                await background.start()
                eventloop.freeze_startup_objects()
                await stop.wait()
                await background.stop()
        finally:
            await store.close()

    eventloop.run(run())
    return 0


@contextlib.asynccontextmanager
async def _metrics_server(
    settings: Settings, metrics: Metrics, store: Store
) -> AsyncIterator[None]:
    """A worker's ``/metrics`` on ``settings.metrics_port``, while the block runs (nothing
    without a port)."""
    if settings.metrics_port is None:
        yield
        return
    import uvicorn

    from receiver.web.admin.access import AdminAccess
    from receiver.web.metrics import metrics_app

    app = metrics_app(metrics, store, AdminAccess(settings.admin_token, settings.trusted_proxies))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.metrics_port,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_config=None,
    )
    where = _host_port(settings.host, settings.metrics_port)
    try:
        # Bound here, so that a port in use is an error of ours rather than uvicorn's exit.
        listening = _listen(settings.host, settings.metrics_port)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a name IDNA cannot encode
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PhotohookError(f"cannot serve metrics on {where}: {reason}") from None
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve([listening]), name="photohook-metrics")
    logging.getLogger("photohook.worker").info("metrics at http://%s/metrics", where)
    try:
        yield
    finally:
        server.should_exit = True
        await serving
        listening.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``'s first address, of whichever family it is (``::1`` is
    IPv6, a name may be either)."""
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return socket.create_server(address, family=family)


def _host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def url(settings: Settings, args: argparse.Namespace) -> int:
    """Print the URL to register with the provider for SOURCE."""
    from receiver.tokens import URLTokens
    from receiver.web.app import url_tokens

    source = settings.sources.get(args.source)
    if source is None:
        return _no_source(settings, args.source)
    base = (args.base_url or settings.base_url or listen_url(settings)).rstrip("/")
    if "token" not in source.require:
        print(f"{base}/hooks/{source.name}")
        return 0
    if settings.secret_keys:
        tokens = URLTokens([key.reveal() for key in settings.secret_keys])
    else:
        tokens = with_store(settings, lambda store: url_tokens(settings, store))
    print(f"{base}/hooks/{source.name}/{tokens.token(source.name)}")
    return 0


def listen_url(settings: Settings) -> str:
    """Where ``serve`` listens, as a URL (an unspecified address as loopback)."""
    import ipaddress

    host = settings.host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{settings.port}"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{host}:{settings.port}"


def secret(settings: Settings, args: argparse.Namespace) -> int:
    """Print a new Standard Webhooks secret (whsec_...) for a destination's 'secret'."""
    from receiver.signing import new_secret

    print(new_secret())
    return 0


def events(settings: Settings, args: argparse.Namespace) -> int:
    """List stored events, newest first."""
    found = with_store(settings, lambda store: store.list_events(event_filters(args)))
    if args.json:
        _print_json([event.to_dict() for event in found])
        return 0
    _print_table(
        ("ID", "RECEIVED", "SOURCE", "TYPE", "TASK", "BUSINESS ID", "RESULTS"),
        [_event_row(event) for event in found],
        empty="no events",
    )
    return 0


def event_filters(args: argparse.Namespace) -> EventQuery:
    """The events that the filters given on the command line match: read as ``GET /api/events``
    reads its query string, into the same store query."""
    from receiver.errors import Invalid
    from receiver.web.admin.queries import event_filters

    given = {name: getattr(args, name, None) for name in EVENT_FILTERS}
    try:
        query = event_filters(
            {name: str(value) for name, value in given.items() if value is not None}
        )
    except Invalid as exc:
        raise UsageError(f"--{(exc.field or '').replace('_', '-')}: {exc.message}") from None
    return replace(query, limit=getattr(args, "limit", 500))  # replaying: pages of 500


def event(settings: Settings, args: argparse.Namespace) -> int:
    """Show one event, its deliveries and each attempt (status, error, the answer's body)."""
    detail = with_store(settings, lambda store: store.event_detail(args.event_id))
    if detail is None:
        return _fail(f"no event {args.event_id!r}")
    if args.json:
        from receiver.web.admin import answers

        _print_json(answers.event_detail(detail))
        return 0
    e = detail.event
    print(f"event {e.id}")
    for label, value in (
        ("source", f"{e.source} ({e.kind})"),
        ("type", e.type),
        ("task", f"{e.task_id} ({e.task_type})" if e.task_type else e.task_id),
        ("business id", e.business_id or "-"),
        ("labels", ", ".join(e.labels) or "-"),
        ("received", f"{format_time(e.received_at)} via {e.via}"),
        ("results", str(len(e.result_urls)) + (" (flagged)" if e.flagged else "")),
        ("duplicates", str(detail.duplicates)),
    ):
        print(f"  {label + ':':<13}{value}")
    if not detail.deliveries:
        print("no deliveries")
    for delivery, attempts in detail.deliveries:
        tries = f"{delivery.attempts} attempt{'' if delivery.attempts == 1 else 's'}"
        print(f"delivery {delivery.id} to {delivery.destination}: {delivery.state}, {tries}")
        for attempt in attempts:
            status = f"HTTP {attempt.status_code}" if attempt.status_code else "-"
            print(
                f"  #{attempt.number} {format_timestamp(attempt.started_at)[:23]}Z  {status}  "
                f"{attempt.duration_ms:.0f} ms  {'ok' if attempt.ok else _printable(attempt.error)}"
            )
            if attempt.response_body:
                print(f"     body: {_printable(attempt.response_body)}")
    return 0


def _printable(text: str | None) -> str:
    """``text`` on one line, with what a terminal would obey (escape sequences, say: a response
    body is whatever a destination sent) spelled out instead."""
    if text is None:
        return "-"
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def deliveries(settings: Settings, args: argparse.Namespace) -> int:
    """List deliveries: dead ones first, then newest first."""
    query = DeliveryQuery(
        state=args.state, event_id=args.event, destination=args.destination, limit=args.limit
    )
    found = with_store(settings, lambda store: store.list_deliveries(query))
    if args.json:
        from receiver.web.admin import answers

        _print_json([answers.delivery(delivery) for delivery in found])
        return 0
    rows = [
        (
            d.id,
            d.state,
            d.destination,
            d.event_id,
            str(d.attempts),
            d.last_error or (f"HTTP {d.last_status}" if d.last_status else "-"),
            _next(d),
        )
        for d in found
    ]
    _print_table(
        ("ID", "STATE", "DESTINATION", "EVENT", "ATTEMPTS", "LAST", "NEXT"),
        rows,
        empty="no deliveries",
    )
    return 0


def replay(settings: Settings, args: argparse.Namespace) -> int:
    """Route an event again (routes added since apply) and queue new deliveries; or every
    event the filters match."""
    from receiver.operations import replay_event

    if args.destination and args.destination not in settings.destinations:
        return _fail(f"no destination named {args.destination!r}")
    filtered = any(getattr(args, name, None) is not None for name in EVENT_FILTERS)
    if (args.event_id is None) == (not filtered):
        return _fail("give an EVENT_ID, or filters (--status failed --since 2026-11-22, say)")
    if filtered:
        return _replay_matching(settings, args)

    async def run(store: Store) -> tuple[Event | None, list[tuple[str, str]]]:
        event = await store.get_event(args.event_id)
        if event is None:
            return None, []
        router = Router(settings.routes)
        return event, await replay_event(
            store,
            router,
            event,
            destination=args.destination,
            destinations=settings.destinations,
            new_id=args.new_id,
        )

    event, created = with_store(settings, run)
    if event is None:
        return _fail(f"no event {args.event_id!r}")
    if not created:
        return _fail(f"no route sends {event.id} anywhere; name one with --destination")
    for delivery_id, target in created:
        print(f"{delivery_id} -> {target}")
    return 0


def _replay_matching(settings: Settings, args: argparse.Namespace) -> int:
    from receiver.operations import BULK_LIMIT, replay_matching

    query = event_filters(args)

    async def run(store: Store, progress: Progress) -> tuple[int, int]:
        return await replay_matching(
            store,
            Router(settings.routes),
            query,
            destination=args.destination,
            new_id=getattr(args, "new_id", False),
            progress=progress.advance,
        )

    with Progress("replaying", unit="events") as progress:
        events, deliveries = with_store(settings, lambda store: run(store, progress))
    print(
        f"replayed {events} events{' (the most at once)' if events >= BULK_LIMIT else ''}:"
        f" {deliveries} new {'delivery' if deliveries == 1 else 'deliveries'}"
    )
    return 0


def retry(settings: Settings, args: argparse.Namespace) -> int:
    """Queue dead deliveries again: one by id, or every dead one with --dead."""
    if (args.delivery_id is None) == (not args.dead):
        return _fail("give a DELIVERY_ID, or --dead (with --destination NAME if you like)")
    count = with_store(
        settings,
        lambda store: store.requeue(delivery_id=args.delivery_id, destination=args.destination),
    )
    if args.delivery_id and not count:
        return _fail(f"{args.delivery_id} is not a dead delivery")
    print(f"queued {count} dead {'delivery' if count == 1 else 'deliveries'} again")
    return 0


def rejected(settings: Settings, args: argparse.Namespace) -> int:
    """List callbacks refused for their content (kept to be retried), newest first."""
    from receiver.store import RejectedQuery

    query = RejectedQuery(source=args.source, limit=args.limit)
    found = with_store(settings, lambda store: store.list_rejected(query))
    if args.json:
        from receiver.web.admin import answers

        _print_json([answers.rejected_detail(record) for record in found])
        return 0
    rows = [
        (
            r.id,
            r.received_at[:19] + "Z",
            r.source,
            str(r.status),
            r.code + (f" ({r.field})" if r.field is not None else ""),
            r.outcome or "-",
            ", ".join(r.event_ids) or r.error()["message"],
        )
        for r in found
    ]
    _print_table(
        ("ID", "RECEIVED", "SOURCE", "STATUS", "ERROR", "RETRY", "EVENTS OR WHY"),
        rows,
        empty="no rejected requests",
    )
    return 0


def rejected_retry(settings: Settings, args: argparse.Namespace) -> int:
    """Run kept rejected requests through ingest again: one by ID, or with --all (of --source)
    every one not accepted yet whose body was kept. Exits 1 when one is still refused or cannot
    be run (accepted already, its source gone), saying why."""
    from receiver.errors import Refused
    from receiver.web import rejected as kept

    if (args.rejected_id is None) == (not args.all):
        return _fail("give an ID, or --all (with --source S if you like)")
    router = Router(settings.routes)
    if args.all:
        with Progress("retrying", unit="requests") as progress:
            outcomes = with_store(
                settings,
                lambda store: kept.retry_all(
                    store,
                    settings,
                    router,
                    getattr(args, "source", None),
                    progress=progress.advance,
                ),
            )
        print(
            ", ".join(f"{outcomes[name]} {name}" for name in ("accepted", "duplicate", "rejected"))
            + (f", {outcomes['skipped']} could not be run" if outcomes["skipped"] else "")
        )
        return 1 if outcomes["rejected"] or outcomes["skipped"] else 0
    try:
        record = with_store(
            settings, lambda store: kept.retry(store, settings, router, args.rejected_id)
        )
    except Refused as exc:
        return _fail(f"{args.rejected_id}: {exc.message}")
    if record.outcome == "rejected":
        error = record.error()
        field = f" (field {error['field']})" if "field" in error else ""
        return _fail(
            f"{record.id}: still refused: {error['status']} {error['code']}{field}: "
            f"{error['message']}; it is kept"
        )
    print(f"{record.id}: {record.outcome}: {', '.join(record.event_ids)}")
    return 0


def destinations(settings: Settings, args: argparse.Namespace) -> int:
    """Show each destination's state, success rate over the last hour and last error."""

    from receiver.operations import destination_report
    from receiver.web.admin import answers

    now, report = with_store(
        settings, lambda store: destination_report(store, settings.destinations)
    )
    statuses = [msgspec.to_builtins(answers.destination(s, now, target)) for s, target in report]
    if args.json:
        _print_json(statuses)
        return 0
    rows = [
        (
            s["name"],
            s["state"] + (f" ({s['reason']})" if s["reason"] else ""),
            s["target"] or "(no longer configured)",
            "-" if s["success_rate"] is None else f"{s['success_rate']:.0%}",
            str(s["queue_depth"]),
            s["last_error"] or "-",
        )
        for s in statuses
    ]
    _print_table(
        ("NAME", "STATE", "TARGET", "SUCCESS 1H", "QUEUED", "LAST ERROR"),
        rows,
        empty="no destinations",
    )
    return 0


def pause(settings: Settings, args: argparse.Namespace) -> int:
    """Stop sending to a destination; its deliveries wait as held."""
    return _set_state(settings, args.name, DestinationState.PAUSED, "paused by an operator")


def resume(settings: Settings, args: argparse.Namespace) -> int:
    """Send to a paused or disabled destination again, held deliveries first."""
    return _set_state(settings, args.name, DestinationState.ACTIVE, None)


def _set_state(settings: Settings, name: str, state: str, reason: str | None) -> int:
    async def run(store: Store) -> bool:
        await store.sync_destinations(settings.destinations)
        return await store.set_destination_state(name, state, reason)

    if not with_store(settings, run):
        return _fail(f"no destination named {name!r}")
    print(f"{name}: {state}")
    return 0


def track(settings: Settings, args: argparse.Namespace) -> int:
    """Track a task submitted to a provider, so its result is recovered if no callback comes."""
    from receiver.operations import track as track_task

    task = with_store(
        settings,
        lambda store: track_task(
            store, settings.sources, args.source, args.task_id, args.business_id
        ),
    )
    print(f"{task.source} {task.task_id}: {task.state}")
    return 0


def tasks(settings: Settings, args: argparse.Namespace) -> int:
    """List tasks tracked with the providers, most recently changed first."""
    found = with_store(settings, lambda store: store.list_tasks(args.state, args.limit))
    if args.json:
        from receiver.web.admin import answers

        _print_json([answers.task(task) for task in found])
        return 0
    rows = [
        (
            task.source,
            task.task_id,
            task.state,
            str(task.checks),
            format_timestamp(task.next_check_at)[:19] + "Z" if task.state in CHECKED else "-",
            task.last_error or "-",
        )
        for task in found
    ]
    _print_table(
        ("SOURCE", "TASK", "STATE", "CHECKS", "NEXT CHECK", "LAST ERROR"), rows, empty="no tasks"
    )
    return 0


def send_test(settings: Settings, args: argparse.Namespace) -> int:
    """Send realistic callbacks of SOURCE's provider to a photohook URL, and summarize."""
    from receiver.cli import simulator

    source = settings.sources.get(args.source)
    if source is None:
        return _no_source(settings, args.source)
    summary = simulator.run(
        kind=source.kind,
        url=args.url,
        status=args.status,
        task_type=args.task_type,
        count=args.count,
        concurrency=args.concurrency,
        secret=args.secret,
    )
    print(summary.report())
    return 0 if summary.ok else 1


def prune(settings: Settings, args: argparse.Namespace) -> int:
    """Delete events, stored requests, attempts and kept rejected requests older than
    --older-than (not events still being delivered)."""
    from receiver.config.durations import parse_duration
    from receiver.retention import prune_old

    try:
        seconds = parse_duration(args.older_than)
    except ValueError as exc:
        return _fail(f"--older-than: {exc}")

    async def run(store: Store, progress: Progress) -> Pruned:
        if args.dry_run:
            return await prune_old(store, seconds, dry_run=True)
        if progress.shown:
            progress.total = (await prune_old(store, seconds, dry_run=True)).events
        return await prune_old(store, seconds, progress=lambda done: progress.advance(done.events))

    with Progress("pruning", unit="events") as progress:
        pruned = with_store(settings, lambda store: run(store, progress))
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {pruned.events} events, {pruned.receipts} requests, "
        f"{pruned.deliveries} deliveries, {pruned.attempts} attempts, "
        f"{pruned.tasks} finished tasks, {pruned.rejected} rejected requests"
    )
    return 0


def check(settings: Settings, args: argparse.Namespace) -> int:
    """Validate the configuration and print the sources, destinations and routes."""
    settings = settings.with_callables()
    print(f"config: {settings.config_file or '(none; built-in defaults)'}")
    print(f"database: {redact.url(settings.database_url)}")
    print(f"max body: {settings.max_body_bytes} bytes")
    print(f"rejected requests kept: {settings.max_rejected_per_source} per source")
    proxies = ", ".join(str(n) for n in settings.trusted_proxies.networks) or "(none)"
    print(f"trusted proxies: {proxies}")
    for name, source in settings.sources.items():
        print(f"source {name}: kind {source.kind}, checks: {', '.join(sorted(source.require))}")
        if "ip" in source.require:
            print(f"  allow_ips: {', '.join(str(n) for n in source.allow_ips.networks)}")
        if "secret" in source.require:
            print(f"  secrets: {len(source.secrets)}")
        if source.max_rejected is not None:
            print(f"  rejected requests kept: {source.max_rejected}")
        if source.api_key is None:
            print("  not reconciled: no api_key")
        else:
            print(
                f"  reconciled with {source.api_base_url}: first check after "
                f"{format_duration(source.reconcile_after)}, lost after "
                f"{format_duration(source.reconcile_for)}"
                + (", terminal callbacks confirmed first" if source.confirm else "")
            )
    for name, destination in settings.destinations.items():
        print(f"destination {name}: {destination.target}")
        if isinstance(destination, HTTPDestination | BrokerDestination) and not destination.secrets:
            print("  unsigned: no secret is configured")
    if not settings.routes:
        print("routes: none; events are stored and not delivered")
    if settings.retention is not None:
        print(f"retention: {format_duration(settings.retention)}")
    for route in settings.routes:
        print(f"route {route.name}: {route.conditions()} -> {', '.join(route.to)}")
    brokers = [d for d in settings.destinations.values() if isinstance(d, BrokerDestination)]
    if args.connect and brokers:
        answered = eventloop.run(connect_brokers(brokers))
        if not all(answered):
            return 1
    print("ok")
    return 0


async def connect_brokers(destinations: list[BrokerDestination]) -> list[bool]:
    """Connect to each broker destination at once, printing which answer; ``check --connect``."""

    async def connect(destination: BrokerDestination) -> bool:
        publisher = publisher_for(destination)
        try:
            async with asyncio.timeout(destination.timeout):
                answered = await publisher.connect()
        except TimeoutError:
            print(
                f"destination {destination.name}: cannot connect: "
                f"no answer within {destination.timeout:g}s"
            )
            return False
        except Exception as exc:
            error = scrub(str(exc) or "connection failed", destination)
            print(f"destination {destination.name}: cannot connect: {type(exc).__name__}: {error}")
            return False
        finally:
            with contextlib.suppress(Exception):
                await publisher.aclose()
        print(f"destination {destination.name}: connected to {answered}")
        return True

    return list(await asyncio.gather(*(connect(d) for d in destinations)))


def with_store(
    settings: Settings, use: Callable[[Store], Awaitable[T]], *, create: bool = False
) -> T:
    """``use`` the database, which must exist: only ``migrate``, ``serve`` and ``worker`` make
    one, so that a command run in the wrong folder does not answer from a new, empty one (or
    print a URL under a key no server knows)."""

    async def run() -> T:
        store = open_store(settings.database_url)
        await store.open(create=create)
        try:
            return await use(store)
        finally:
            await store.close()

    return eventloop.run(run())


def _next(delivery: Delivery) -> str:
    if delivery.next_attempt_at is None or delivery.state not in CLAIMABLE:
        return "-"
    return format_timestamp(delivery.next_attempt_at)[:19] + "Z"


def _no_source(settings: Settings, name: str) -> int:
    return _fail(f"no source named {name!r} (have: {', '.join(settings.sources)})")


def _fail(message: str) -> int:
    print(f"photohook: error: {message}", file=sys.stderr)
    return 1


@contextlib.contextmanager
def stdout_bytes() -> Iterator[IO[bytes]]:
    """Standard output for bytes, every one of them written by the time the block ends.

    Unbuffered (``python -u``, or ``PYTHONUNBUFFERED=1`` as containers often set it),
    ``sys.stdout.buffer`` is the raw file, whose ``write`` may take only part of what it is given
    and say so only in what it returns: ``events --json`` then came back cut short, with exit
    status 0. A buffered writer of its own on the same descriptor writes until all is out.
    """
    sys.stdout.flush()
    with open(sys.stdout.fileno(), "wb", closefd=False) as out:
        yield out


def _print_json(value: Any) -> None:
    with stdout_bytes() as out:
        out.write(orjson.dumps(value, default=msgspec.to_builtins, option=orjson.OPT_INDENT_2))
        out.write(b"\n")


def _event_row(event: Event) -> tuple[str, ...]:
    return (
        event.id,
        format_time(event.received_at)[:19] + "Z",
        event.source,
        event.type,
        event.task_id,
        event.business_id or "-",
        str(len(event.result_urls)),
    )


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str) -> None:
    if not rows:
        print(empty)
        return
    table = [tuple(header), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
