"""From what a provider said to the routed events photohook stores."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from receiver.events import Event
from receiver.ids import new_id
from receiver.routing import Router
from receiver.sources import Kind, ParsedEvent
from receiver.store import BatchRule, NewEvent, Tracking
from receiver.types import JSONObject


def new_events(
    parsed: Iterable[ParsedEvent],
    *,
    source: str,
    kind: Kind,
    ranks: dict[str, int],
    router: Router,
    tracking: Tracking | None,
    payload: JSONObject,
    keep_results: bool = False,
    received_at: datetime,
    via: str = "callback",
    batching: BatchRule | None = None,
) -> tuple[NewEvent, ...]:
    """Each parsed event as a normalized :class:`Event`, with its rank, routes and tracking,
    whether its result files are kept (its source's ``keep_results``, or a matching route's),
    and the rule by which its task joins batches."""
    events = []
    for item in parsed:
        event = Event(
            id=new_id("evt"),
            source=source,
            kind=kind.name,
            type=item.type,
            task_id=item.task_id,
            task_type=item.task_type,
            status=item.status,
            business_id=item.business_id,
            labels=item.labels,
            result_urls=item.result_urls,
            flagged=item.flagged,
            received_at=received_at,
            payload=payload,
            via=via,
        )
        routes, keep = router.route(event) if router.routes else ((), False)
        terminal = item.status in kind.terminal_statuses
        keep = (keep or keep_results) and bool(event.result_urls)
        events.append(
            NewEvent(event, ranks[item.status], routes, terminal, tracking, keep, batching)
        )
    return tuple(events)
