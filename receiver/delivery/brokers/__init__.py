"""Publishing to the team's message brokers: RabbitMQ (AMQP 0-9-1), Redis Streams and NATS
JetStream. One publisher per destination holds its connection, opened at the first delivery and
opened again at the next attempt after a failure, so a broker that is away costs one connection
try per scheduled attempt, never a storm."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable
from typing import Protocol, assert_never
from urllib.parse import unquote, urlsplit

from receiver.delivery.message import Message
from receiver.destinations import BrokerDestination
from receiver.events import Event
from receiver.observability import tracing


class Publisher(Protocol):
    """Publishes to one destination's broker; ``publish`` returns once the broker confirmed."""

    async def publish(self, message: Message, event: Event) -> str:
        """Publish and wait for the broker's confirmation; returns what it confirmed, in a line
        (a stream entry's id, a sequence number). Raises
        :class:`~receiver.errors.BrokerRefused`, or the client's error when the broker cannot be
        reached."""
        ...

    async def connect(self) -> str:
        """Connect (for ``photohook check --connect``); returns what answered."""
        ...

    async def aclose(self) -> None: ...


def publisher_for(destination: BrokerDestination) -> Publisher:
    match destination.kind:
        case "rabbitmq":
            from receiver.delivery.brokers.rabbitmq import RabbitMQPublisher

            return RabbitMQPublisher(destination)
        case "redis":
            from receiver.delivery.brokers.redis_streams import RedisStreamPublisher

            return RedisStreamPublisher(destination)
        case "nats":
            from receiver.delivery.brokers.jetstream import JetStreamPublisher

            return JetStreamPublisher(destination)
        case _:
            assert_never(destination.kind)


def event_headers(message: Message, event: Event) -> dict[str, str]:
    """A message's headers on a broker: the Standard Webhooks ones, and what a consumer routes
    or filters on without parsing the body."""
    headers = {
        **message.headers,
        "content-type": "application/json",
        "photohook-event-type": event.type,
        "photohook-source": event.source,
        "photohook-task-id": event.task_id,
    }
    tracing.inject(headers)  # traceparent, when the attempt is traced
    return headers


def scrub(text: str, destination: BrokerDestination) -> str:
    """``text`` (a client's error) without the destination's URL, user, password or token."""
    try:
        url = destination.url.reveal()
    except LookupError:
        return text
    text = text.replace(url, destination.shown_url)
    parts = urlsplit(url)
    for secret in {parts.username, parts.password}:
        for form in {secret, unquote(secret or "")} - {None, ""}:
            assert form is not None
            text = re.sub(rf"(?<![\w]){re.escape(form)}(?![\w])", "**********", text)
    return text


_CLOSING: set[asyncio.Task[None]] = set()
CLOSE_TIMEOUT = 5.0


async def close_quietly(closing: Awaitable[object]) -> None:
    """Await a connection's close for a few seconds at most, whatever it raises: a broker that
    is gone must not hold up an attempt, or a worker's stop."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await closing


def close_later(closing: Awaitable[object]) -> None:
    """:func:`close_quietly`, in the background."""
    task = asyncio.get_running_loop().create_task(close_quietly(closing))
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)
