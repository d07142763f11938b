"""One delivery attempt: an HTTP POST, a call of a handler function, or a message published to
a broker."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeAlias

import httpx

from receiver import redact, ssrf
from receiver.__about__ import __version__
from receiver.context import DeliveryContext
from receiver.delivery.brokers import Publisher, publisher_for, scrub
from receiver.delivery.message import Message, compose
from receiver.destinations import (
    BrokerDestination,
    Destination,
    HandlerDestination,
    HTTPDestination,
    ImportString,
    takes_context,
)
from receiver.errors import BrokerRefused, DeniedDestination, TransformFailed
from receiver.events import Event
from receiver.observability import tracing
from receiver.retry import Retry
from receiver.store import Attempt

logger = logging.getLogger("photohook.delivery")

USER_AGENT = f"photohook/{__version__}"
RESPONSE_BODY_LIMIT = 2048


@dataclass(frozen=True, slots=True)
class Result:
    """What one attempt came to."""

    attempt: Attempt
    retry_after: float | None = None
    gone: bool = False
    skipped: bool = False


def http_transport() -> httpx.AsyncHTTPTransport:
    """One keep-alive connection, over which a sender sends its deliveries one at a time.

    Senders use httpx's transport directly, not an ``AsyncClient`` over it: a delivery needs
    none of what the client adds (cookies, which would carry one answer's ``Set-Cookie`` into
    the next delivery; redirects, which are not followed; proxies from the environment; default
    headers such as ``Accept-Encoding``, which would make the recorded response body compressed
    bytes), and the client's layers cost about a third of each request's CPU.

    A pool of one connection, not one pool for every place of a lane: httpcore's pool looks at
    each of its connections, and polls the socket of each idle one, on every request and every
    response; and requests that queue at once are all offered the same idle connection, so all
    but one start over. With deliveries starting in bursts, a shared pool of 8 connections cost
    more CPU than the rest of a delivery.

    Every transport verifies TLS with the one :func:`tls_context`.
    """
    return httpx.AsyncHTTPTransport(
        verify=tls_context(),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        trust_env=False,
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings and trusted certificate authorities (certifi's) of every delivery.

    One for the process: httpx would otherwise build one for each transport, loading the
    authorities again, about 25 ms and 0.8 MiB each, for each place of each lane.
    """
    return httpx.create_ssl_context(trust_env=False)


class _SignedSender:
    """What HTTP and broker senders share: the transform, the signing keys, and the message
    built from an event with them."""

    def __init__(self, destination: HTTPDestination | BrokerDestination) -> None:
        transform = destination.transform
        if isinstance(transform, ImportString):
            raise transform.error("the transform was not imported")
        self._name = destination.name
        self._transform = transform
        self._keys = destination.signing_keys()

    def _message(
        self, event: Event, context: DeliveryContext | None, started: float, clock: float
    ) -> Message | Result:
        """The signed message (its ``webhook-id`` the context's, else the event id), or the
        attempt's result when the transform failed or gave None."""
        message_id = context.message_id if context is not None else event.id
        try:
            message = compose(event, message_id, self._keys, self._transform)
        except TransformFailed as exc:
            # The attempt's line says what failed; the traceback is for debugging.
            logger.debug("transform of destination %s failed", self._name, exc_info=True)
            return Result(_attempt(started, clock, ok=False, error=str(exc)))
        if message is None:
            skipped = _attempt(started, clock, ok=True, error="not sent: the transform gave None")
            return Result(skipped, skipped=True)
        return message


class HTTPSender(_SignedSender):
    """POSTs events to an HTTP destination, signed the Standard Webhooks way, one at a time."""

    def __init__(
        self, destination: HTTPDestination, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(destination)
        self.destination = destination
        self._transport = transport if transport is not None else http_transport()
        self._url = httpx.URL(destination.url)
        self._timeouts = httpx.Timeout(destination.timeout).as_dict()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def send(self, event: Event, context: DeliveryContext | None = None) -> Result:
        """One attempt; ``context`` gives the ``webhook-id`` (default: the event id)."""
        destination = self.destination
        started, clock = time.time(), time.perf_counter()

        def failed(error: str) -> Result:
            return Result(_attempt(started, clock, ok=False, error=error))

        message = self._message(event, context, started, clock)
        if isinstance(message, Result):
            return message
        body = message.body
        headers = {
            **destination.headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **message.headers,
        }
        tracing.inject(headers)  # traceparent, when the attempt is traced
        try:
            async with asyncio.timeout(destination.timeout):
                url, extensions = await self._target(headers)
                request = httpx.Request(
                    "POST",
                    url,
                    content=body,
                    headers=headers,
                    extensions={**extensions, "timeout": self._timeouts},
                )
                response = await self._transport.handle_async_request(request)
                response.request = request
                try:
                    head = await _read_prefix(response, RESPONSE_BODY_LIMIT)
                finally:
                    await response.aclose()
        except TimeoutError:
            return failed(f"timed out after {destination.timeout:g}s")
        except DeniedDestination as exc:
            return failed(f"refused: {exc}")
        except (httpx.HTTPError, OSError) as exc:
            return failed(f"{type(exc).__name__}: {str(exc) or 'connection failed'}")
        status = response.status_code
        ok = 200 <= status < 300
        error = None
        if not ok:
            error = f"HTTP {status}"
            if 300 <= status < 400:
                error += " (redirects are not followed)"
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        attempt = _attempt(
            started,
            clock,
            ok=ok,
            status_code=status,
            error=error,
            response_headers=redact.headers_json(response.headers.raw),
            response_body=head,
        )
        return Result(attempt, retry_after=retry_after, gone=status == 410)

    async def _target(self, headers: dict[str, str]) -> tuple[httpx.URL, dict[str, Any]]:
        if self.destination.allow_private:
            return self._url, {}
        return await pinned(self._url, headers)


class HandlerSender:
    """Calls a handler function: async ones on the event loop, sync ones in a thread."""

    def __init__(self, destination: HandlerDestination) -> None:
        handler = destination.handler
        if isinstance(handler, ImportString):
            raise handler.error("the handler was not imported")
        self.destination = destination
        self._handler: Callable[..., Any] = handler
        self._is_async = inspect.iscoroutinefunction(handler)
        # Decided once: a handler of one parameter keeps being called with the event alone.
        self._takes_context = takes_context(handler)

    async def aclose(self) -> None:
        """Nothing to close: handlers hold no connection."""

    async def send(self, event: Event, context: DeliveryContext) -> Result:
        destination = self.destination
        started, clock = time.time(), time.perf_counter()
        retry_after = None
        error = None
        arguments = (event, context) if self._takes_context else (event,)
        try:
            async with asyncio.timeout(destination.timeout):
                if self._is_async:
                    await self._handler(*arguments)
                else:
                    # A sync handler that overruns keeps its thread until it returns; the
                    # attempt counts as failed and is retried.
                    returned = await asyncio.to_thread(self._handler, *arguments)
                    if inspect.isawaitable(returned):
                        await returned
        except Retry as exc:
            error, retry_after = "the handler asked to retry", exc.after
        except TimeoutError:
            error = f"timed out after {destination.timeout:g}s"
        except Exception as exc:
            # The attempt's line says what failed (a warning once the delivery is dead); the
            # traceback is for debugging.
            logger.debug(
                "handler of destination %s failed on %s",
                destination.name,
                event.id,
                exc_info=True,
            )
            error = f"{type(exc).__name__}: {exc}"
        return Result(_attempt(started, clock, ok=error is None, error=error), retry_after)


class BrokerSender(_SignedSender):
    """Publishes events to a message broker, signed as for HTTP; an attempt succeeds once the
    broker confirmed the message."""

    def __init__(self, destination: BrokerDestination, publisher: Publisher) -> None:
        super().__init__(destination)
        self.destination = destination
        self._publisher = publisher

    async def aclose(self) -> None:
        await self._publisher.aclose()

    async def send(self, event: Event, context: DeliveryContext | None = None) -> Result:
        destination = self.destination
        started, clock = time.time(), time.perf_counter()

        def failed(error: str) -> Result:
            return Result(_attempt(started, clock, ok=False, error=error))

        message = self._message(event, context, started, clock)
        if isinstance(message, Result):
            return message
        try:
            async with asyncio.timeout(destination.timeout):
                confirmed = await self._publisher.publish(message, event)
        except TimeoutError:
            return failed(f"timed out after {destination.timeout:g}s")
        except BrokerRefused as exc:
            return failed(f"refused: {scrub(str(exc), destination)}")
        except Exception as exc:
            # The client's exception, not its traceback: either may name the broker's user.
            text = scrub(str(exc) or "connection failed", destination)
            return failed(f"{type(exc).__name__}: {text}")
        return Result(_attempt(started, clock, ok=True, response_body=confirmed.encode()))


def not_sent(error: str) -> Result:
    """A failed attempt that never reached the destination; it counts, and is tried again."""
    return Result(_attempt(time.time(), time.perf_counter(), ok=False, error=error))


def _attempt(
    started: float,
    clock: float,
    *,
    ok: bool,
    error: str | None = None,
    status_code: int | None = None,
    response_headers: bytes | None = None,
    response_body: bytes | None = None,
) -> Attempt:
    return Attempt(
        started_at=started,
        duration_ms=(time.perf_counter() - clock) * 1000,
        ok=ok,
        status_code=status_code,
        error=error,
        response_headers=response_headers,
        response_body=response_body,
    )


Sender: TypeAlias = "HTTPSender | HandlerSender | BrokerSender"


def senders_for(destination: Destination, count: int) -> list[Sender]:
    """``count`` senders, one per delivery a destination may have in flight; a broker's share
    one publisher, and with it one connection."""
    if isinstance(destination, HTTPDestination):
        return [HTTPSender(destination) for _ in range(count)]
    if isinstance(destination, HandlerDestination):
        return [HandlerSender(destination) for _ in range(count)]
    publisher = publisher_for(destination)
    return [BrokerSender(destination, publisher) for _ in range(count)]


async def pinned(url: httpx.URL, headers: dict[str, str]) -> tuple[httpx.URL, dict[str, Any]]:
    """The URL to connect to, its host resolved and every address checked; ``headers`` gets the
    original Host, and TLS still verifies the original name. Connecting to the checked address,
    not resolving again, is what defeats DNS rebinding."""
    address = await ssrf.resolve(url.host, url.port or (443 if url.scheme == "https" else 80))
    if address == url.host:
        return url, {}
    headers["host"] = url.netloc.decode("ascii")
    return url.copy_with(host=address), {"sni_hostname": url.host}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


async def _read_prefix(response: httpx.Response, limit: int) -> bytes:
    head = b""
    async for chunk in response.aiter_raw():
        head += chunk
        if len(head) >= limit:
            break
    return head[:limit]
