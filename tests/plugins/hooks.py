"""Handlers and transforms that tests name by import string."""

from __future__ import annotations

from typing import Any

from receiver import DeliveryContext, Event, Retry

CALLS: list[str] = []


def record(event: Event) -> None:
    CALLS.append(event.id)


def to_order_update(event: Event) -> dict[str, Any] | None:
    if event.business_id is None:
        return None
    return {"order": event.business_id, "done": event.status == "completed"}


NOT_CALLABLE = 42


def three_arguments(event: Event, context: object, other: int) -> None:
    """Not a handler: it needs three arguments."""


ASYNC_CALLS: list[str] = []
ATTEMPTS: dict[str, int] = {}


async def record_async(event: Event) -> None:
    ASYNC_CALLS.append(event.id)


async def too_slow(event: Event) -> None:
    import asyncio

    await asyncio.sleep(5)


def retry_once(event: Event) -> None:
    """Asks for one retry, 50ms later, then succeeds."""
    from receiver import Retry

    ATTEMPTS[event.id] = ATTEMPTS.get(event.id, 0) + 1
    if ATTEMPTS[event.id] == 1:
        raise Retry(after=0.05)


def broken(event: Event) -> None:
    raise RuntimeError("the handler is broken")


CONTEXTS: list[tuple[str, DeliveryContext]] = []


def record_context_then_retry(event: Event, context: DeliveryContext) -> None:
    """Records each call's context; asks for a second attempt."""
    CONTEXTS.append((event.id, context))
    if context.attempt == 1:
        raise Retry(after=0)
