"""NATS JetStream: each message published to a subject and acknowledged by the stream that
holds it, with ``Nats-Msg-Id`` set to the ``webhook-id``, so that the stream's duplicate window
drops a message published again (a retry whose first try did arrive)."""

from __future__ import annotations

import asyncio

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client

from receiver.delivery.brokers import close_later, close_quietly, event_headers
from receiver.delivery.message import Message
from receiver.destinations import BrokerDestination, render_name
from receiver.errors import BrokerRefused
from receiver.events import Event


class JetStreamPublisher:
    """One NATS connection per destination. The client does not reconnect by itself: a lost
    connection closes it, and the next attempt connects again."""

    def __init__(self, destination: BrokerDestination) -> None:
        self._destination = destination
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._closed = False

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
            raise BrokerRefused(f"no JetStream stream takes the subject {subject!r}") from None
        except nats.js.errors.APIError as exc:
            raise BrokerRefused(
                f"JetStream refused the message: {exc.description or exc}"
            ) from None
        except BaseException:
            # No answer in time may be a connection that died without a word (nats-py would
            # notice only at its next pings, minutes later): the next attempt connects anew.
            self._discard(client)
            raise
        again = " (a duplicate the stream dropped)" if ack.duplicate else ""
        return f"acknowledged by JetStream stream {ack.stream!r} as {ack.seq}{again}"

    async def aclose(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            await close_quietly(client.close())

    async def _open(self) -> Client:
        async with self._lock:
            if self._closed:
                raise RuntimeError("the publisher is closed")
            if self._client is None or self._client.is_closed:
                errors: list[Exception] = []

                async def collect(error: Exception) -> None:
                    errors.append(error)

                try:
                    self._client = await nats.connect(
                        self._destination.url.reveal(),
                        connect_timeout=min(5, max(1, int(self._destination.timeout))),
                        allow_reconnect=False,
                        # Two tries of the server (nats-py counts "more than 1"), then give up.
                        max_reconnect_attempts=1,
                        reconnect_time_wait=0.1,
                        error_cb=collect,
                    )
                except nats.errors.NoServersError:
                    # What went wrong went to the callback; say that, not "no servers".
                    if errors:
                        raise errors[-1] from None
                    raise
            return self._client

    def _discard(self, client: Client) -> None:
        if self._client is client:
            self._client = None
        if not client.is_closed:
            close_later(client.close())
