"""RabbitMQ: persistent messages to an exchange, each confirmed by the broker (publisher
confirms) and published ``mandatory``, so a message no queue would take is refused, not lost."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aio_pika
import aio_pika.abc
from aio_pika.abc import FieldValue
from aio_pika.exceptions import ChannelNotFoundEntity, DeliveryError
from pamqp.commands import Basic

from receiver.delivery.brokers import close_later, close_quietly, event_headers
from receiver.delivery.message import Message
from receiver.destinations import BrokerDestination, render_name
from receiver.errors import BrokerRefused
from receiver.events import Event


@dataclass
class _Session:
    """A connection, its confirming channel, and the exchanges found on it: replaced together."""

    connection: aio_pika.abc.AbstractConnection
    channel: aio_pika.abc.AbstractChannel
    exchanges: dict[str, aio_pika.abc.AbstractExchange] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        # A connection the broker dropped is not "closed" until close() is called on it.
        return self.connection.connected.is_set() and not self.channel.is_closed


class RabbitMQPublisher:
    """One connection and one confirming channel per destination, shared by its deliveries."""

    def __init__(self, destination: BrokerDestination) -> None:
        self._destination = destination
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def connect(self) -> str:
        await self._current()
        return f"RabbitMQ at {self._destination.shown_url}"

    async def publish(self, message: Message, event: Event) -> str:
        destination = self._destination
        name = render_name(destination.topic, event)
        key = render_name(destination.routing_key, event)
        headers: dict[str, FieldValue] = {**event_headers(message, event)}
        session = await self._current()
        try:
            exchange = await self._exchange(session, name)
            await exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.id,
                    timestamp=datetime.fromtimestamp(message.timestamp, UTC),
                    type=event.type,
                ),
                routing_key=key,
                mandatory=True,
            )
        except DeliveryError as exc:
            returned = exc.message.delivery if exc.message is not None else None
            reason = returned.reply_text if isinstance(returned, Basic.Return) else "negative ack"
            raise BrokerRefused(
                f"RabbitMQ did not take the message ({reason}): no queue is bound to "
                f"exchange {name!r} for routing key {key!r}"
                if reason == "NO_ROUTE"
                else f"RabbitMQ did not take the message ({reason})"
            ) from None
        except Exception:
            # A cancelled or timed-out publish leaves the channel as it was (aiormq forgets
            # its confirmation); a failed one may have lost the channel or the connection.
            if not session.alive:
                self._discard(session)
            raise
        return f"confirmed by RabbitMQ: exchange {name!r}, routing key {key!r}"

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await close_quietly(session.connection.close())

    async def _current(self) -> _Session:
        async with self._lock:
            if self._closed:
                raise RuntimeError("the publisher is closed")
            session = self._session
            if session is None or not session.alive:
                if session is not None:
                    self._discard(session)
                connection = await aio_pika.connect(
                    self._destination.url.reveal(), timeout=self._destination.timeout
                )
                try:
                    channel = await connection.channel(
                        publisher_confirms=True, on_return_raises=True
                    )
                except BaseException:
                    close_later(connection.close())
                    raise
                session = self._session = _Session(connection, channel)
            return session

    async def _exchange(self, session: _Session, name: str) -> aio_pika.abc.AbstractExchange:
        exchange = session.exchanges.get(name)
        if exchange is not None:
            return exchange
        if not name:  # the default exchange cannot be declared, not even passively
            exchange = session.channel.default_exchange
        else:
            # A passive declare that fails closes its channel: never the shared one.
            probe = await session.connection.channel(publisher_confirms=False)
            try:
                await probe.get_exchange(name, ensure=True)
            except ChannelNotFoundEntity:
                raise BrokerRefused(f"RabbitMQ has no exchange {name!r}") from None
            finally:
                if not probe.is_closed:
                    close_later(probe.close())
            exchange = await session.channel.get_exchange(name, ensure=False)
        session.exchanges[name] = exchange
        return exchange

    def _discard(self, session: _Session) -> None:
        """Forget ``session`` (if it is still the current one) and close it in the background,
        so that no attempt waits for a broker that is gone."""
        if self._session is session:
            self._session = None
        close_later(session.connection.close())
