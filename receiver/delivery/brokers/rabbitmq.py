"""RabbitMQ: persistent messages to an exchange, each confirmed by the broker (publisher
confirms) and published ``mandatory``, so a message no queue would take is refused, not lost."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import aio_pika
import aio_pika.abc
from aio_pika.exceptions import ChannelNotFoundEntity, DeliveryError
from pamqp.commands import Basic

from receiver.delivery.brokers import Refused, event_headers
from receiver.delivery.message import Message
from receiver.destinations import BrokerDestination, render_name
from receiver.events import Event


class RabbitMQPublisher:
    """One connection and one confirming channel per destination, shared by its deliveries."""

    def __init__(self, destination: BrokerDestination) -> None:
        self._destination = destination
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        self._lock = asyncio.Lock()

    async def connect(self) -> str:
        await self._open()
        return f"RabbitMQ at {self._destination.shown_url}"

    async def publish(self, message: Message, event: Event) -> str:
        destination = self._destination
        name = render_name(destination.topic, event)
        key = render_name(destination.routing_key, event)
        try:
            exchange = await self._exchange(name)
            await exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=dict(event_headers(message, event)),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.id,
                    timestamp=datetime.fromtimestamp(message.timestamp, UTC),
                    type=event.type,
                ),
                routing_key=key,
                mandatory=True,
            )
        except ChannelNotFoundEntity:
            await self._reset(channel_only=True)
            raise Refused(f"RabbitMQ has no exchange {name!r}") from None
        except DeliveryError as exc:
            returned = exc.message.delivery if exc.message is not None else None
            reason = returned.reply_text if isinstance(returned, Basic.Return) else "negative ack"
            raise Refused(
                f"RabbitMQ did not take the message ({reason}): no queue is bound to "
                f"exchange {name!r} for routing key {key!r}"
                if reason == "NO_ROUTE"
                else f"RabbitMQ did not take the message ({reason})"
            ) from None
        except BaseException:
            await self._reset()
            raise
        return f"confirmed by RabbitMQ: exchange {name!r}, routing key {key!r}"

    async def aclose(self) -> None:
        await self._reset()

    async def _open(self) -> aio_pika.abc.AbstractChannel:
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                self._channel = None
                self._connection = await aio_pika.connect(
                    self._destination.url.reveal(), timeout=self._destination.timeout
                )
            if self._channel is None or self._channel.is_closed:
                self._exchanges = {}
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
            return self._channel

    async def _exchange(self, name: str) -> aio_pika.abc.AbstractExchange:
        channel = await self._open()
        exchange = self._exchanges.get(name)
        if exchange is None:
            # The default exchange ("") cannot be declared, not even passively.
            exchange = channel.default_exchange if not name else await channel.get_exchange(name)
            self._exchanges[name] = exchange
        return exchange

    async def _reset(self, *, channel_only: bool = False) -> None:
        """Drop the channel (and the connection) so that the next attempt opens them again."""
        channel, self._channel, self._exchanges = self._channel, None, {}
        connection = None
        if not channel_only:
            connection, self._connection = self._connection, None
        with contextlib.suppress(Exception):
            if channel is not None and not channel.is_closed:
                await channel.close()
        with contextlib.suppress(Exception):
            if connection is not None and not connection.is_closed:
                await connection.close()
