"""Operator actions shared by the command line, the admin API and the dashboard."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from .destinations import Destination
from .events import Event
from .routing import Router
from .store import EventQuery, Store

#: The most events one bulk replay touches.
BULK_LIMIT = 10_000


async def replay_event(
    store: Store,
    router: Router,
    event: Event,
    *,
    destination: str | None = None,
    destinations: Collection[str] = (),
) -> list[tuple[str, str]]:
    """Queue new deliveries of ``event``: to ``destination``, or wherever routes send it now.

    Returns (delivery id, destination) pairs; empty when no route sends the event anywhere.
    """
    targets = (destination,) if destination else router.destinations(event)
    if not targets:
        return []
    await store.sync_destinations(destinations or targets)
    return list(zip(await store.add_deliveries(event.id, targets), targets, strict=True))


async def replay_matching(
    store: Store, router: Router, query: EventQuery, *, destination: str | None = None
) -> tuple[int, int]:
    """Replay every event ``query`` matches (at most ``BULK_LIMIT``): (events, deliveries)."""
    events = deliveries = 0
    page = replace(query, limit=min(query.limit, 500))
    while events < BULK_LIMIT:
        found = await store.list_events(page)
        for event in found:
            deliveries += len(await replay_event(store, router, event, destination=destination))
        events += len(found)
        if len(found) < page.limit:
            break
        page = replace(page, before=found[-1].id)
    return events, deliveries


async def destination_report(
    store: Store, destinations: Mapping[str, Destination]
) -> list[dict[str, Any]]:
    """Each destination's state and health, with its target (a URL without its query)."""
    await store.sync_destinations(destinations)
    now = time.time()
    report = []
    for status in await store.destination_statuses(now):
        configured = destinations.get(status.name)
        report.append(status.to_dict(now) | {"target": configured.target if configured else None})
    return report
