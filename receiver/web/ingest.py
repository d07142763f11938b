"""The front door: ``POST /hooks/{source}[/{token}]``.

Authenticate, check the media type and size, parse, validate, store durably, and only then
answer 200. Every refusal is a 4xx in the JSON error shape; our own faults are a 503, so the
provider sends the callback again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from receiver import redact
from receiver.clientaddr import AddressSet, client_address
from receiver.config.settings import Settings
from receiver.config.sources import SourceConfig
from receiver.errors import (
    MethodNotAllowed,
    PayloadTooLarge,
    Refused,
    RequestTimeout,
    ServiceUnavailable,
    StoreError,
    UnknownSource,
    UnsupportedMediaType,
)
from receiver.ids import new_id
from receiver.observability import tracing
from receiver.observability.logs import REQUEST_ID, begin_request, log_request
from receiver.observability.metrics import Metrics
from receiver.routing import Router
from receiver.store import Intake, Receipt, Rejection, Stored
from receiver.tokens import URLTokens
from receiver.types import IPAddress
from receiver.web._request import RequestHeaders, read_body
from receiver.web.auth import SourceAuth
from receiver.web.callbacks import KEPT_REFUSALS, SourceRules, check_media_type
from receiver.web.deadline import RequestDeadline
from receiver.web.responses import answer

logger = logging.getLogger("photohook.ingest")

#: How long a callback may wait for its commit before the provider is told to retry (503).
COMMIT_TIMEOUT = 10.0


#: Seconds a source whose cap turned a rejected request away is taken to be still full, so that
#: a flood of them (a leaked token, say) costs the database nothing meanwhile.
_FULL_FOR = 5.0


@dataclass(frozen=True, slots=True)
class _Source:
    config: SourceConfig
    rules: SourceRules
    auth: SourceAuth


class _Refused(Exception):
    """An authenticated callback refused for what it sent, with the request to keep."""

    def __init__(self, error: Refused, rejection: Rejection) -> None:
        super().__init__(error.message)
        self.error = error
        self.rejection = rejection


class Ingest:
    """The callback endpoint of every configured source."""

    def __init__(
        self,
        settings: Settings,
        store: Intake,
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
        self._access_log = settings.access_log
        self._trusted_proxies: AddressSet = settings.trusted_proxies
        self._forwarded = bool(self._trusted_proxies)  # whether X-Forwarded-For is read
        self._sources: dict[str, _Source] = {}
        self._full_until: dict[str, float] = {}  # sources whose rejected-request cap is reached
        #: Per source: when its next over-cap line may be written, and how many the cap turned
        #: away since its last one (a flood must not flood the log too).
        self._over_cap: dict[str, tuple[float, int]] = {}

    def start(self, tokens: URLTokens) -> None:
        """Make the endpoint ready, once the URL token keys are known."""
        self._sources = {
            name: _Source(config, SourceRules.of(config), SourceAuth(config, tokens))
            for name, config in self._settings.sources.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /hooks/{source}[/{token}]`` as a plain ASGI endpoint, with the source and token
        in ``scope["path_params"]`` (see :func:`hook_path_params`).

        Every callback takes this path, so it is answered without a Request object or the
        middleware stack of the other routes; it logs its own access line and ``X-Request-ID``.
        """
        started = time.perf_counter()
        request_id, reset = begin_request()
        source = scope["path_params"]["source"]
        status = 500
        outcome = ""
        event_ids: tuple[str, ...] = ()
        try:
            try:
                stored = await self._receive(scope, receive)
            except Refused as error:
                found = answer(error)
                status, outcome = found.status_code, found.code
                body = orjson.dumps(found.body())
                headers = _headers(body, found.headers, request_id)
                self._metrics.callback(source, "rejected", outcome, time.perf_counter() - started)
            else:
                status = 200
                outcome = "duplicate" if stored.duplicate else "accepted"
                event_ids = stored.event_ids
                body = orjson.dumps(
                    {"ok": True, "event_ids": stored.event_ids, "duplicate": stored.duplicate}
                )
                headers = _headers(body, None, request_id)
                self._metrics.callback(source, outcome, "", time.perf_counter() - started)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            if status != 200 or self._access_log:
                path: str = scope["path"]
                if "token" in scope["path_params"]:
                    path = path.rpartition("/")[0] + "/<token>"
                # One event is the common case; a Crop.photo batch is many, found by request id.
                event_id = event_ids[0] if len(event_ids) == 1 else None
                log_request(
                    scope["method"],
                    path,
                    status,
                    outcome,
                    started,
                    {"source": source, "event_id": event_id},
                )
            REQUEST_ID.reset(reset)

    async def _receive(self, scope: Scope, receive: Receive) -> Stored:
        if scope["method"] != "POST":
            raise MethodNotAllowed(allowed=("POST",))
        try:
            return await self._store_callback(scope, receive)
        except Refused:
            raise
        except Exception:
            # Our fault, never the provider's: 503 so that it sends the callback again.
            logger.exception("storing a callback failed")
            raise ServiceUnavailable() from None

    async def _store_callback(self, scope: Scope, receive: Receive) -> Stored:
        trace = tracing.callback(scope["path_params"]["source"])
        if trace is None:
            source, receipt, stored = await self._commit(scope, receive, None)
        else:
            with trace:
                source, receipt, stored = await self._commit(scope, receive, trace)
                trace.span.set_attributes(_attributes(receipt, stored))
        if stored.new_event_ids:
            new = set(stored.new_event_ids)
            self._metrics.stored(n.event.type for n in receipt.events if n.event.id in new)
        if (
            stored.deliveries
            or stored.files
            or stored.batch_events
            or (stored.new_event_ids and source.rules.tracking is not None)
        ):
            self._wake()  # new deliveries to send, or a task to track or confirm
        return stored

    async def _commit(
        self, scope: Scope, receive: Receive, trace: tracing.CallbackTrace | None
    ) -> tuple[_Source, Receipt, Stored]:
        """Read, check and durably store the callback, within its deadlines."""
        committing = False
        name = scope["path_params"]["source"]
        # One deadline for the whole request: the body's, then the commit's, which cannot come
        # before COMMIT_TIMEOUT from now.
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = RequestDeadline(now + self._settings.body_timeout, now + COMMIT_TIMEOUT)
        try:
            async with deadline:
                try:
                    source, receipt = await self._receipt(scope, receive, trace)
                except _Refused as refused:
                    committing = True
                    deadline.move(loop.time() + COMMIT_TIMEOUT)
                    await self._keep(refused.rejection)
                    raise refused.error from None
                committing = True
                deadline.move(loop.time() + COMMIT_TIMEOUT)
                if trace is not None:
                    trace.mark()
                stored = await self._store.store(receipt)
                if trace is not None:
                    trace.step("store")
        except TimeoutError:
            if not deadline.expired():
                raise  # not the deadline's: a fault of ours, answered 503
            if not committing:
                raise RequestTimeout(
                    f"the body did not arrive within {self._settings.body_timeout:g}s"
                ) from None
            logger.error("storing a callback of source %s took over %ss", name, COMMIT_TIMEOUT)
            raise ServiceUnavailable(retry_after=5) from None
        except StoreError as exc:
            logger.error("cannot store a callback of source %s: %s", name, exc)
            raise ServiceUnavailable(retry_after=5) from None
        return source, receipt, stored

    async def _receipt(
        self, scope: Scope, receive: Receive, trace: tracing.CallbackTrace | None = None
    ) -> tuple[_Source, Receipt]:
        """Authenticate, read and validate the callback: what is to be stored. A refusal for
        what an authenticated callback sent is raised as :class:`_Refused`, to be kept."""
        params = scope["path_params"]
        source = self._sources.get(params["source"])
        if source is None:
            raise UnknownSource()
        headers = RequestHeaders(scope["headers"], forwarded=self._forwarded)
        peer = scope["client"][0] if scope.get("client") else None
        if self._forwarded:
            client = client_address(peer, headers.forwarded_for, self._trusted_proxies)
            client_text = str(client) if client is not None else None
        else:
            client, client_text = _peer(peer)
        source.auth.check(token=params.get("token"), client=client, secret=headers.secret)
        if trace is not None:
            trace.step("authenticate")
        body: bytes | None = None
        try:
            try:
                check_media_type(headers.content_type, headers.content_encoding)
            except UnsupportedMediaType:
                # Kept with its body, should the body be JSON after all: a retry of a kept 415
                # skips this check, and parses and validates the body.
                with contextlib.suppress(PayloadTooLarge):
                    body = await read_body(receive, headers.content_length, self._max_body)
                raise
            body = await read_body(receive, headers.content_length, self._max_body)
            if trace is not None:
                trace.mark()
            receipt = source.rules.receipt(
                body,
                router=self._router,
                received_at=datetime.now(UTC),
                peer=peer,
                client=client_text,
                headers=redact.headers_json(scope["headers"]),
                trace_context=trace.traceparent if trace is not None else None,
            )
            if trace is not None:
                trace.step("parse")
            return source, receipt
        except KEPT_REFUSALS as error:
            found = answer(error)
            rejection = Rejection(
                id=new_id("rej"),
                source=source.config.name,
                received_at=datetime.now(UTC),
                peer=peer,
                client=client_text,
                headers=redact.headers_json(scope["headers"]),
                body=body,
                status=found.status_code,
                code=found.code,
                message=found.message,
                field=found.field,
                keep_at_most=self._settings.rejected_cap(source.config.name),
            )
            raise _Refused(error, rejection) from None

    async def _keep(self, rejection: Rejection) -> None:
        """Keep a refused callback durably before it is answered, within its source's cap;
        raises StoreError when it cannot be kept (the provider is then told to retry)."""
        name = rejection.source
        full_until = self._full_until.get(name)
        if full_until is not None and time.monotonic() < full_until:
            kept = False
        else:
            kept = await self._store.keep_rejected(rejection)
            if kept:
                self._full_until.pop(name, None)
            else:
                self._full_until[name] = time.monotonic() + _FULL_FOR
        field = f" (field {rejection.field!r})" if rejection.field is not None else ""
        if kept:
            self._metrics.rejected(name, "kept")
            logger.warning(
                "refused a callback of source %s with %d %s%s: %s; kept as %s",
                name,
                rejection.status,
                rejection.code,
                field,
                rejection.message,
                rejection.id,
            )
        else:
            self._metrics.rejected(name, "over_cap")
            now = time.monotonic()
            next_line, since = self._over_cap.get(name, (0.0, 0))
            if now < next_line:
                self._over_cap[name] = (next_line, since + 1)
                return
            self._over_cap[name] = (now + _FULL_FOR, 0)
            logger.warning(
                "refused a callback of source %s with %d %s%s: %s; not kept: the source keeps "
                "%d rejected requests already (max_rejected); %d turned away so since the last "
                "such line (one every %gs at most)",
                name,
                rejection.status,
                rejection.code,
                field,
                rejection.message,
                rejection.keep_at_most,
                since + 1,
                _FULL_FOR,
            )


def hook_path_params(scope: Scope) -> dict[str, str] | None:
    """``{"source": ..., "token"?: ...}`` when the request is for ``/hooks/{source}[/{token}]``
    (below the mount point, if any), else None."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if not path.startswith("/hooks/"):
        return None
    parts = path[len("/hooks/") :].split("/")
    if len(parts) > 2 or not all(parts):
        return None
    return dict(zip(("source", "token"), parts, strict=False))


@functools.lru_cache(maxsize=4096)  # the same peers call again and again
def _peer(peer: str | None) -> tuple[IPAddress | None, str | None]:
    """The client that the socket's peer is (no trusted proxy in front), and as text."""
    client = client_address(peer, (), AddressSet())
    return client, str(client) if client is not None else None


def _headers(
    body: bytes, extra: dict[str, str] | None, request_id: str
) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    if extra:
        headers.extend((name.lower().encode(), value.encode()) for name, value in extra.items())
    return headers


def _attributes(receipt: Receipt, stored: Stored) -> dict[str, Any]:
    """What a callback's span says of it: never its body, token or secret."""
    found: dict[str, Any] = {
        "photohook.event.ids": list(stored.event_ids),
        "photohook.duplicate": not stored.new_event_ids,
    }
    if receipt.events:
        first = receipt.events[0].event
        found["photohook.event.type"] = first.type
        found["photohook.task.id"] = first.task_id
    return found
