"""The real brokers the tests publish to (RabbitMQ, Redis, NATS JetStream on 127.0.0.1), each
behind a test's own names, which it deletes after; and a TCP relay whose connections a test can
cut, to take a broker away without stopping a server other tests share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import nats
import pytest
import redis.asyncio
from nats.js.api import StreamConfig

RABBITMQ_URL = os.environ.get("PHOTOHOOK_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("PHOTOHOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("PHOTOHOOK_TEST_NATS_URL", "nats://127.0.0.1:4222")


@dataclass
class Published:
    """One message as a consumer reads it."""

    body: bytes
    headers: dict[str, str]


class Broker:
    """One kind of broker, with names of this test's own: ``config`` is the destination's
    table; ``refuse``/``accept`` make the broker refuse the destination's messages or take them."""

    kind = ""
    url = ""

    def __init__(self) -> None:
        self.name = f"photohook-test-{uuid.uuid4().hex[:10]}"

    def config(self, url: str) -> str:
        raise NotImplementedError

    async def open(self) -> None: ...

    async def refuse(self) -> None: ...

    async def accept(self) -> None: ...

    async def messages(self) -> list[Published]:
        raise NotImplementedError

    async def close(self) -> None: ...


class RabbitMQ(Broker):
    """A topic exchange and a queue bound to it for every ``photohook.#`` routing key."""

    kind = "rabbitmq"
    url = RABBITMQ_URL

    def config(self, url: str) -> str:
        return f'kind = "rabbitmq"\nurl = "{url}"\nexchange = "{self.name}"\n'

    async def open(self) -> None:
        self.connection = await aio_pika.connect(self.url, timeout=5)
        self.channel = await self.connection.channel()
        self.queue = await self.channel.declare_queue(self.name, auto_delete=False)
        await self.accept()

    async def refuse(self) -> None:
        """No exchange of that name: the broker refuses to publish to it."""
        await self.channel.exchange_delete(self.name)

    async def accept(self) -> None:
        exchange = await self.channel.declare_exchange(self.name, aio_pika.ExchangeType.TOPIC)
        await self.queue.bind(exchange, routing_key="photohook.#")

    async def messages(self) -> list[Published]:
        found = []
        while (message := await self.queue.get(no_ack=True, fail=False)) is not None:
            headers = {
                k: v.decode() if isinstance(v, bytes) else str(v)
                for k, v in message.headers.items()
            }
            found.append(Published(message.body, headers))
        self.received = getattr(self, "received", []) + found
        return self.received

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.channel.queue_delete(self.name)
            await self.channel.exchange_delete(self.name)
        await self.connection.close()


class Redis(Broker):
    """A stream of this test's name."""

    kind = "redis"
    url = REDIS_URL

    def config(self, url: str) -> str:
        return f'kind = "redis"\nurl = "{url}"\nstream = "{self.name}"\nmax_len = 1000\n'

    async def open(self) -> None:
        self.client = redis.asyncio.Redis.from_url(self.url)
        await self.client.ping()

    async def refuse(self) -> None:
        """A plain string under the stream's name: XADD there is a WRONGTYPE error."""
        await self.client.set(self.name, "not a stream")

    async def accept(self) -> None:
        await self.client.delete(self.name)

    async def messages(self) -> list[Published]:
        found = []
        for _, fields in await self.client.xrange(self.name):
            decoded = {k.decode(): v for k, v in fields.items()}
            body = decoded.pop("body")
            found.append(Published(body, {k: v.decode() for k, v in decoded.items()}))
        return found

    async def close(self) -> None:
        await self.client.delete(self.name)
        await self.client.aclose()


class JetStream(Broker):
    """A JetStream stream taking every subject under this test's name."""

    kind = "nats"
    url = NATS_URL

    def config(self, url: str) -> str:
        return f'kind = "nats"\nurl = "{url}"\nsubject = "{self.name}.{{source}}.{{status}}"\n'

    @property
    def stream(self) -> str:
        return self.name.replace("-", "_").upper()

    async def open(self) -> None:
        self.client = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=1)
        self.js = self.client.jetstream()
        await self.accept()

    async def refuse(self) -> None:
        """No stream takes the subject: JetStream answers that there is none."""
        with contextlib.suppress(Exception):
            await self.js.delete_stream(self.stream)

    async def accept(self) -> None:
        await self.js.add_stream(StreamConfig(name=self.stream, subjects=[f"{self.name}.>"]))

    async def messages(self) -> list[Published]:
        info = await self.js.stream_info(self.stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            message = await self.js.get_msg(self.stream, seq)
            found.append(Published(message.data or b"", dict(message.headers or {})))
        return found

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.js.delete_stream(self.stream)
        await self.client.close()


KINDS: dict[str, type[Broker]] = {"rabbitmq": RabbitMQ, "redis": Redis, "nats": JetStream}


async def open_broker(kind: str) -> Broker:
    """The broker of ``kind``, opened; skipped (failed under CI) when its server does not answer."""
    broker = KINDS[kind]()
    try:
        async with asyncio.timeout(10):
            await broker.open()
    except Exception as exc:
        reason = f"no {kind} server answers at {KINDS[kind].url.split('@')[-1]}: {exc!r}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return broker


class Relay:
    """A TCP relay on 127.0.0.1 to ``target``; ``cut()`` drops every connection and refuses new
    ones until ``restore()``."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        if self._server is not None:
            await self.cut()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._writers -= {writer, upstream_writer}


def relayed(url: str, relay: Relay) -> str:
    """``url`` with its host and port replaced by the relay's."""
    parts = urlsplit(url)
    netloc = f"{parts.username}:{parts.password}@" if parts.username else ""
    return parts._replace(netloc=f"{netloc}127.0.0.1:{relay.port}").geturl()


def target_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def decoded(headers: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}
