"""NATS JetStream: each message published to a subject and acknowledged by the stream that
holds it, with ``Nats-Msg-Id`` set to the ``webhook-id``, so that the stream's duplicate window
drops a message published again (a retry whose first try did arrive)."""

from __future__ import annotations

import asyncio
import logging

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client

from receiver.delivery.brokers import Refused, event_headers, scrub
from receiver.delivery.message import Message
from receiver.destinations import BrokerDestination, render_name
from receiver.events import Event

logger = logging.getLogger("photohook.delivery")


class JetStreamPublisher:
    """One NATS connection per destination. The client tries once to reconnect after losing
    its server, then closes; the next attempt connects again."""

    def __init__(self, destination: BrokerDestination) -> None:
        self._destination = destination
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> str:
        await self._open()
        return f"NATS at {self._destination.shown_url}"

    async def publish(self, message: Message, event: Event) -> str:
        subject = render_name(self._destination.topic, event)
        client = await self._open()
        headers = {"Nats-Msg-Id": message.id, **event_headers(message, event)}
        try:
            ack = await client.jetstream().publish(
                subject, message.body, timeout=self._destination.timeout, headers=headers
            )
        except nats.js.errors.NoStreamResponseError:
            raise Refused(f"no JetStream stream takes the subject {subject!r}") from None
        except nats.js.errors.APIError as exc:
            raise Refused(f"JetStream refused the message: {exc.description or exc}") from None
        again = " (a duplicate the stream dropped)" if ack.duplicate else ""
        return f"acknowledged by JetStream stream {ack.stream!r} as {ack.seq}{again}"

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            await client.close()

    async def _open(self) -> Client:
        async with self._lock:
            if self._client is None or self._client.is_closed:
                self._client = await nats.connect(
                    self._destination.url.reveal(),
                    connect_timeout=max(1, int(self._destination.timeout)),
                    # Two tries (nats-py counts "more than 1"), then the connection closes.
                    max_reconnect_attempts=1,
                    reconnect_time_wait=1,
                    error_cb=self._error,
                )
            return self._client

    async def _error(self, error: Exception) -> None:
        logger.debug(
            "NATS connection of destination %s: %s",
            self._destination.name,
            scrub(str(error) or type(error).__name__, self._destination),
        )
