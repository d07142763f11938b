"""The front door: ``POST /hooks/{source}[/{token}]``.

Authenticate, check the media type and size, parse, validate, store durably, and only then
answer 200. Every refusal is a 4xx in the JSON error shape; our own faults are a 503, so the
provider sends the callback again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response

from . import redact
from .auth import SECRET_HEADER, SourceAuth
from .clientaddr import AddressSet, client_address
from .errors import (
    HTTPError,
    InvalidJSON,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    StoreError,
    UnknownSource,
    UnsupportedMediaType,
)
from .ids import new_id
from .metrics import Metrics
from .normalize import new_events
from .reconciler import tracking
from .responses import JSONResponse, error_response
from .routing import Router
from .settings import Settings, SourceConfig
from .sources import KINDS, Kind
from .store import Receipt, Store, Stored, Tracking
from .tokens import URLTokens

logger = logging.getLogger("photohook.ingest")

#: How long a callback may wait for its commit before the provider is told to retry (503).
COMMIT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class _Source:
    config: SourceConfig
    kind: Kind
    auth: SourceAuth
    ranks: dict[str, int]
    tracking: Tracking | None


class Ingest:
    """The callback endpoint of every configured source."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        router: Router,
        metrics: Metrics,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._store = store
        self._router = router
        self._wake = wake
        self._max_body = settings.max_body_bytes
        self._trusted_proxies: AddressSet = settings.trusted_proxies
        self._sources: dict[str, _Source] = {}

    def start(self, tokens: URLTokens) -> None:
        """Make the endpoint ready, once the URL token keys are known."""
        self._sources = {
            name: _Source(
                config,
                KINDS[config.kind],
                SourceAuth(config, tokens),
                KINDS[config.kind].status_rank,
                tracking(config),
            )
            for name, config in self._settings.sources.items()
        }

    async def receive(self, request: Request) -> Response:
        started = time.perf_counter()
        source = request.path_params["source"]
        try:
            stored = await self._receive(request)
        except HTTPError as error:
            request.state.outcome = error.code
            self._metrics.callback(source, "rejected", error.code, time.perf_counter() - started)
            return error_response(error)
        outcome = "duplicate" if stored.duplicate else "accepted"
        request.state.outcome = outcome
        self._metrics.callback(source, outcome, "", time.perf_counter() - started)
        return JSONResponse(
            {"ok": True, "event_ids": stored.event_ids, "duplicate": stored.duplicate}
        )

    async def _receive(self, request: Request) -> Stored:
        source = self._sources.get(request.path_params["source"])
        if source is None:
            raise UnknownSource()
        headers = request.headers
        peer = request.client.host if request.client else None
        forwarded = headers.getlist("x-forwarded-for") if self._trusted_proxies else ()
        client = client_address(peer, forwarded, self._trusted_proxies)
        source.auth.check(
            token=request.path_params.get("token"),
            client=client,
            secret=headers.get(SECRET_HEADER),
        )
        _check_media_type(headers.get("content-type"), headers.get("content-encoding"))
        try:
            async with asyncio.timeout(self._settings.body_timeout):
                body = await _read_body(request, self._max_body)
        except TimeoutError:
            raise RequestTimeout(
                f"the body did not arrive within {self._settings.body_timeout:g}s"
            ) from None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidJSON(f"the body is not valid JSON: {exc.msg}") from None
        received_at = datetime.now(UTC)
        name = source.config.name
        events = new_events(
            source.kind.parse(document),
            source=name,
            kind=source.kind,
            ranks=source.ranks,
            router=self._router,
            tracking=source.tracking,
            payload=document,
            received_at=received_at,
        )
        receipt = Receipt(
            id=new_id("rcv"),
            source=name,
            received_at=received_at,
            peer=peer,
            client=str(client) if client is not None else None,
            headers=redact.headers_json(request.scope["headers"]),
            body=body,
            body_sha256=hashlib.sha256(body).digest(),
            events=events,
        )
        try:
            async with asyncio.timeout(COMMIT_TIMEOUT):
                stored = await self._store.store(receipt)
        except StoreError as exc:
            logger.error("cannot store a callback of source %s: %s", name, exc)
            raise ServiceUnavailable(headers={"Retry-After": "5"}) from None
        except TimeoutError:
            logger.error("storing a callback of source %s took over %ss", name, COMMIT_TIMEOUT)
            raise ServiceUnavailable(headers={"Retry-After": "5"}) from None
        if stored.new_event_ids:
            new = set(stored.new_event_ids)
            self._metrics.stored(n.event.type for n in events if n.event.id in new)
        if stored.deliveries or (stored.new_event_ids and source.tracking is not None):
            self._wake()  # new deliveries to send, or a task to track or confirm
        return stored


def _check_media_type(content_type: str | None, content_encoding: str | None) -> None:
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType()
    if content_encoding and content_encoding.strip().lower() != "identity":
        raise UnsupportedMediaType("the body must not be compressed (Content-Encoding)")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPError("Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
