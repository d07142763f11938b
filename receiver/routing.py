"""Routes: which events go to which destinations."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from receiver.events import Event

_CONDITIONS = ("source", "type", "status", "task_type", "business_id", "labels")


@dataclass(frozen=True)
class Route:
    """``[[routes]]``: every given condition must hold; a list means any of its values.

    ``type``, ``business_id`` and ``labels`` are globs (``batch.*``, ``order-*``); ``labels``
    matches when any of the event's labels matches any glob. A route with no conditions matches
    every event, batch events included.
    """

    name: str
    to: tuple[str, ...]
    source: frozenset[str] | None = None
    type: tuple[str, ...] | None = None
    status: frozenset[str] | None = None
    task_type: frozenset[str] | None = None
    business_id: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None
    flagged: bool | None = None
    keep_results: bool = False  # its events' result files are kept before any delivery

    def __post_init__(self) -> None:
        object.__setattr__(self, "_type", _globs(self.type))
        object.__setattr__(self, "_business_id", _globs(self.business_id))
        object.__setattr__(self, "_labels", _globs(self.labels))

    def matches(self, event: Event) -> bool:
        if self.source is not None and event.source not in self.source:
            return False
        if self.status is not None and event.status not in self.status:
            return False
        if self.task_type is not None and event.task_type not in self.task_type:
            return False
        if self.flagged is not None and event.flagged is not self.flagged:
            return False
        event_type: re.Pattern[str] | None = self._type  # type: ignore[attr-defined]
        if event_type is not None and not event_type.match(event.type):
            return False
        business_id: re.Pattern[str] | None = self._business_id  # type: ignore[attr-defined]
        if business_id is not None and not (
            event.business_id and business_id.match(event.business_id)
        ):
            return False
        labels: re.Pattern[str] | None = self._labels  # type: ignore[attr-defined]
        return labels is None or any(labels.match(label) for label in event.labels)

    def conditions(self) -> str:
        parts = []
        for key in _CONDITIONS:
            value = getattr(self, key)
            if value is not None:
                parts.append(f"{key} in [{', '.join(sorted(value))}]")
        if self.flagged is not None:
            parts.append(f"flagged = {str(self.flagged).lower()}")
        return " and ".join(parts) or "every event"


class Router:
    """The distinct destinations of an event, in the order routes first name them."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)

    def destinations(self, event: Event) -> tuple[str, ...]:
        return self.route(event)[0]

    def route(self, event: Event) -> tuple[tuple[str, ...], bool]:
        """The event's destinations, and whether a route matching it says ``keep_results``."""
        found: dict[str, None] = {}
        keep = False
        for route in self.routes:
            if route.matches(event):
                found.update(dict.fromkeys(route.to))
                keep |= route.keep_results
        return tuple(found), keep


def _globs(patterns: tuple[str, ...] | None) -> re.Pattern[str] | None:
    if patterns is None:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
