"""Publishing to the team's message brokers: RabbitMQ (AMQP 0-9-1), Redis Streams and NATS
JetStream. One publisher per destination holds its connection, opened at the first delivery and
opened again at the next attempt after a failure, so a broker that is away costs one connection
try per scheduled attempt, never a storm."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from receiver.delivery.message import Message
from receiver.destinations import BrokerDestination
from receiver.events import Event


class Refused(Exception):
    """The broker answered, and refused the message (no such exchange or stream, no queue bound
    for its routing key, a full stream): a failed attempt, retried on the schedule."""


class Publisher(Protocol):
    """Publishes to one destination's broker; ``publish`` returns once the broker confirmed."""

    async def publish(self, message: Message, event: Event) -> str:
        """Publish and wait for the broker's confirmation; returns what it confirmed, in a line
        (a stream entry's id, a sequence number). Raises :class:`Refused`, or the client's
        error when the broker cannot be reached."""
        ...

    async def connect(self) -> str:
        """Connect (for ``photohook check --connect``); returns what answered."""
        ...

    async def aclose(self) -> None: ...


def publisher_for(destination: BrokerDestination) -> Publisher:
    if destination.kind == "rabbitmq":
        from receiver.delivery.brokers.rabbitmq import RabbitMQPublisher

        return RabbitMQPublisher(destination)
    if destination.kind == "redis":
        from receiver.delivery.brokers.redis_streams import RedisStreamPublisher

        return RedisStreamPublisher(destination)
    from receiver.delivery.brokers.jetstream import JetStreamPublisher

    return JetStreamPublisher(destination)


def event_headers(message: Message, event: Event) -> dict[str, str]:
    """A message's headers on a broker: the Standard Webhooks ones, and what a consumer routes
    or filters on without parsing the body."""
    return {
        **message.headers,
        "content-type": "application/json",
        "photohook-event-type": event.type,
        "photohook-source": event.source,
        "photohook-task-id": event.task_id,
    }


def scrub(text: str, destination: BrokerDestination) -> str:
    """``text`` (a client's error) without the destination's URL or password in it."""
    try:
        url = destination.url.reveal()
    except LookupError:
        return text
    text = text.replace(url, destination.shown_url)
    password = urlsplit(url).password
    return text.replace(password, "**********") if password else text
