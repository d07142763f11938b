"""The commands that show what photohook holds: ``events``, ``event``, ``deliveries``,
``destinations``, ``tasks``, ``rejected``."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING

import msgspec

from receiver.config.settings import Settings
from receiver.errors import UsageError
from receiver.events import Event, format_time, format_timestamp
from receiver.states import CHECKED, CLAIMABLE, KeptState
from receiver.store import Delivery, DeliveryQuery, EventQuery, KeptFile

if TYPE_CHECKING:
    pass
from receiver.cli._common import EVENT_FILTERS, fail, print_json, print_table, with_store


def events(settings: Settings, args: argparse.Namespace) -> int:
    """List stored events, newest first."""
    found = with_store(settings, lambda store: store.list_events(event_filters(args)))
    if args.json:
        print_json([event.to_dict() for event in found])
        return 0
    print_table(
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
        return fail(f"no event {args.event_id!r}")
    if args.json:
        from receiver.web.admin import answers

        print_json(answers.event_detail(detail))
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
    for file in detail.files:
        print(f"result file {file.position}: {_kept(file)}")
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


def _kept(file: KeptFile) -> str:
    """How keeping a result file went, on one line."""
    if file.state == KeptState.KEPT:
        return f"kept, {file.size} bytes, {file.content_type or '-'}, sha256 {file.sha256}"
    tries = f"{file.attempts} attempt{'' if file.attempts == 1 else 's'}"
    if file.state == KeptState.MISSING:
        return f"missing after {tries}: {_printable(file.last_error)}"
    last = f", last: {_printable(file.last_error)}" if file.last_error else ""
    return f"{file.state} ({tries}{last})"


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

        print_json([answers.delivery(delivery) for delivery in found])
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
    print_table(
        ("ID", "STATE", "DESTINATION", "EVENT", "ATTEMPTS", "LAST", "NEXT"),
        rows,
        empty="no deliveries",
    )
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
        print_json(statuses)
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
    print_table(
        ("NAME", "STATE", "TARGET", "SUCCESS 1H", "QUEUED", "LAST ERROR"),
        rows,
        empty="no destinations",
    )
    return 0


def tasks(settings: Settings, args: argparse.Namespace) -> int:
    """List tasks tracked with the providers, most recently changed first."""
    found = with_store(settings, lambda store: store.list_tasks(args.state, args.limit))
    if args.json:
        from receiver.web.admin import answers

        print_json([answers.task(task) for task in found])
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
    print_table(
        ("SOURCE", "TASK", "STATE", "CHECKS", "NEXT CHECK", "LAST ERROR"), rows, empty="no tasks"
    )
    return 0


def rejected(settings: Settings, args: argparse.Namespace) -> int:
    """List callbacks refused for their content (kept to be retried), newest first."""
    from receiver.store import RejectedQuery

    query = RejectedQuery(source=args.source, limit=args.limit)
    found = with_store(settings, lambda store: store.list_rejected(query))
    if args.json:
        from receiver.web.admin import answers

        print_json([answers.rejected_detail(record) for record in found])
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
    print_table(
        ("ID", "RECEIVED", "SOURCE", "STATUS", "ERROR", "RETRY", "EVENTS OR WHY"),
        rows,
        empty="no rejected requests",
    )
    return 0


def _next(delivery: Delivery) -> str:
    if delivery.next_attempt_at is None or delivery.state not in CLAIMABLE:
        return "-"
    return format_timestamp(delivery.next_attempt_at)[:19] + "Z"


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
