"""Handlers and transforms that tests name by import string."""

from __future__ import annotations

from typing import Any

from receiver import Event

CALLS: list[str] = []


def record(event: Event) -> None:
    CALLS.append(event.id)


def to_order_update(event: Event) -> dict[str, Any] | None:
    if event.business_id is None:
        return None
    return {"order": event.business_id, "done": event.status == "completed"}


NOT_CALLABLE = 42


def two_arguments(event: Event, other: int) -> None:
    """Not a handler: it needs two arguments."""
