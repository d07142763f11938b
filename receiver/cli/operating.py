"""The commands that change what photohook does: ``replay``, ``retry``, ``rejected retry``,
``pause``, ``resume``, ``track``, ``send-test``, ``prune``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from receiver.cli.progress import Progress
from receiver.config.settings import Settings
from receiver.events import Event
from receiver.routing import Router
from receiver.states import DestinationState
from receiver.store import Pruned, Store

if TYPE_CHECKING:
    pass
from receiver.cli._common import EVENT_FILTERS, fail, no_source, with_store
from receiver.cli.reading import event_filters


def replay(settings: Settings, args: argparse.Namespace) -> int:
    """Route an event again (routes added since apply) and queue new deliveries; or every
    event the filters match."""
    from receiver.operations import replay_event

    if args.destination and args.destination not in settings.destinations:
        return fail(f"no destination named {args.destination!r}")
    filtered = any(getattr(args, name, None) is not None for name in EVENT_FILTERS)
    if (args.event_id is None) == (not filtered):
        return fail("give an EVENT_ID, or filters (--status failed --since 2026-11-22, say)")
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
        return fail(f"no event {args.event_id!r}")
    if not created:
        return fail(f"no route sends {event.id} anywhere; name one with --destination")
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
        return fail("give a DELIVERY_ID, or --dead (with --destination NAME if you like)")
    count = with_store(
        settings,
        lambda store: store.requeue(delivery_id=args.delivery_id, destination=args.destination),
    )
    if args.delivery_id and not count:
        return fail(f"{args.delivery_id} is not a dead delivery")
    print(f"queued {count} dead {'delivery' if count == 1 else 'deliveries'} again")
    return 0


def rejected_retry(settings: Settings, args: argparse.Namespace) -> int:
    """Run kept rejected requests through ingest again: one by ID, or with --all (of --source)
    every one not accepted yet whose body was kept. Exits 1 when one is still refused or cannot
    be run (accepted already, its source gone), saying why."""
    from receiver.errors import Refused
    from receiver.web import rejected as kept

    if (args.rejected_id is None) == (not args.all):
        return fail("give an ID, or --all (with --source S if you like)")
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
        return fail(f"{args.rejected_id}: {exc.message}")
    if record.outcome == "rejected":
        error = record.error()
        field = f" (field {error['field']})" if "field" in error else ""
        return fail(
            f"{record.id}: still refused: {error['status']} {error['code']}{field}: "
            f"{error['message']}; it is kept"
        )
    print(f"{record.id}: {record.outcome}: {', '.join(record.event_ids)}")
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
        return fail(f"no destination named {name!r}")
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


def send_test(settings: Settings, args: argparse.Namespace) -> int:
    """Send realistic callbacks of SOURCE's provider to a photohook URL, and summarize."""
    from receiver.cli import simulator

    source = settings.sources.get(args.source)
    if source is None:
        return no_source(settings, args.source)
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
        return fail(f"--older-than: {exc}")

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
        + (f", {pruned.files} kept result files" if pruned.files else "")
    )
    return 0
