"""Redis Streams: each message an entry added with ``XADD`` (optionally capped by an approximate
``MAXLEN``); the entry's id is the broker's confirmation."""

from __future__ import annotations

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import EncodableT, FieldT

from receiver.delivery.brokers import event_headers
from receiver.delivery.message import Message
from receiver.destinations import BrokerDestination, render_name
from receiver.errors import BrokerRefused
from receiver.events import Event


class RedisStreamPublisher:
    """redis-py's client, whose pool reconnects at the next command after a failure."""

    def __init__(self, destination: BrokerDestination) -> None:
        self._destination = destination
        self._client: redis.asyncio.Redis | None = None

    async def connect(self) -> str:
        await self._open().ping()
        return f"Redis at {self._destination.shown_url}"

    async def publish(self, message: Message, event: Event) -> str:
        stream = render_name(self._destination.topic, event)
        fields: dict[FieldT, EncodableT] = {"body": message.body}
        fields.update(event_headers(message, event))
        try:
            entry = await self._open().xadd(
                stream, fields, maxlen=self._destination.max_len, approximate=True
            )
        except redis.exceptions.ResponseError as exc:
            raise BrokerRefused(f"Redis refused XADD to {stream!r}: {exc}") from None
        entry_id = entry.decode() if isinstance(entry, bytes) else str(entry)
        return f"added to Redis stream {stream!r} as {entry_id}"

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _open(self) -> redis.asyncio.Redis:
        if self._client is None:
            timeout = self._destination.timeout
            self._client = redis.asyncio.Redis.from_url(
                self._destination.url.reveal(),
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                max_connections=self._destination.max_in_flight,
                # One more try on a fresh connection when a pooled one turns out dead (the
                # server restarted while it sat idle); other failures wait for the schedule.
                retry=Retry(NoBackoff(), 1),
                retry_on_error=[redis.exceptions.ConnectionError],
            )
        return self._client
