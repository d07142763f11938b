"""Where events go: HTTP endpoints (signed the Standard Webhooks way) and handler functions."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from .config import Table
from .errors import ConfigError
from .events import Event
from .importer import import_from_string
from .retry import DEFAULT_SCHEDULE, RetrySchedule
from .secret import Secret, UnsetSecret
from .signing import decode_secret
from .ssrf import DeniedDestination, check_host

Handler: TypeAlias = Callable[[Event], Awaitable[None] | None]
Transform: TypeAlias = Callable[[Event], Any]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RESERVED_HEADERS = frozenset(
    {"host", "content-type", "content-length", "user-agent", "transfer-encoding", "connection"}
)


@dataclass(frozen=True, kw_only=True)
class HTTPDestination:
    """``[destinations.NAME]`` with ``url``: events are POSTed there as JSON."""

    name: str
    url: str
    secrets: tuple[Secret, ...] = ()
    timeout: float = 15.0
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    max_in_flight: int = 16
    rate_limit: float | None = None  # attempts per second
    headers: Mapping[str, str] = field(default_factory=dict)
    transform: Transform | None = None
    allow_private: bool = False

    @property
    def target(self) -> str:
        """The URL without its query string, which may carry a credential."""
        parts = urlsplit(self.url)
        shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
        return f"{shown}?…" if parts.query else shown

    def signing_keys(self) -> list[bytes]:
        return [decode_secret(secret.reveal()) for secret in self.secrets]


@dataclass(frozen=True, kw_only=True)
class HandlerDestination:
    """``[destinations.NAME]`` with ``handler``: a Python function is called with each event."""

    name: str
    handler: Handler
    timeout: float = 30.0
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    max_in_flight: int = 16
    rate_limit: float | None = None

    @property
    def target(self) -> str:
        return f"{self.handler.__module__}:{self.handler.__qualname__}"


Destination: TypeAlias = HTTPDestination | HandlerDestination


def read_destination(table: Table, name: str, *, allow_private: bool) -> Destination:
    url = table.take_optional_str("url")
    handler_path = table.take_optional_str("handler")
    if (url is None) == (handler_path is None):
        raise table.error("url", "give either url (HTTP) or handler (a Python function), not both")
    schedule = table.take_list("retry_schedule", default=None)
    delays: tuple[float, ...] = DEFAULT_SCHEDULE
    if schedule is not None:
        delays = tuple(
            table.duration_of("retry_schedule", index, item) for index, item in enumerate(schedule)
        )
    retry = RetrySchedule(delays=delays)
    max_in_flight = table.take_int("max_in_flight", 16, minimum=1)
    rate_limit = _rate(table)
    if handler_path is not None:
        handler = _resolve(table, "handler", handler_path)
        timeout = table.take_duration("timeout", 30.0)
        table.finish()
        return HandlerDestination(
            name=name,
            handler=handler,
            timeout=timeout,
            retry=retry,
            max_in_flight=max_in_flight,
            rate_limit=rate_limit,
        )
    assert url is not None
    private_ok = table.take_bool("allow_private", allow_private)
    _check_url(table, url, private_ok)
    secrets = table.take_secrets("secret")
    for index, secret in enumerate(secrets):
        if isinstance(secret, UnsetSecret):
            continue
        try:
            decode_secret(secret.reveal())
        except ValueError as exc:
            raise table.error(f"secret[{index}]", str(exc)) from None
    headers = table.take_table("headers")
    extra = {}
    for key, value in headers.data.items():
        if not isinstance(value, str):
            raise headers.error(key, f"expected a string, got {value!r}")
        if key.lower() in _RESERVED_HEADERS or key.lower().startswith("webhook-"):
            raise headers.error(key, "photohook sets this header itself")
        extra[key] = value
    transform_path = table.take_optional_str("transform")
    transform = _resolve(table, "transform", transform_path) if transform_path else None
    timeout = table.take_duration("timeout", 15.0)
    if timeout <= 0:
        raise table.error("timeout", "must be more than 0")
    table.finish()
    return HTTPDestination(
        name=name,
        url=url,
        secrets=secrets,
        timeout=timeout,
        retry=retry,
        max_in_flight=max_in_flight,
        rate_limit=rate_limit,
        headers=extra,
        transform=transform,
        allow_private=private_ok,
    )


def _resolve(table: Table, key: str, import_str: str) -> Any:
    try:
        target = import_from_string(import_str)
    except ConfigError as exc:
        raise table.error(key, exc.message) from None
    if not callable(target):
        raise table.error(key, f'"{import_str}" is not callable')
    parameters = [
        p
        for p in inspect.signature(target).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(parameters) > 1:
        raise table.error(key, f'"{import_str}" must take one argument, the event')
    return target


def _check_url(table: Table, url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise table.error("url", f"expected an http:// or https:// URL, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise table.error("url", f"bad port in {url!r}") from None
    if parts.username or parts.password:
        raise table.error("url", "credentials in the URL are not allowed; use headers")
    if not allow_private:
        try:
            check_host(parts.hostname, port)
        except DeniedDestination as exc:
            raise table.error(
                "url",
                f"{exc}; refused (set allow_private = true on the destination, or "
                "[server] allow_private_destinations = true, to allow it)",
            ) from None


def _rate(table: Table) -> float | None:
    text = table.take_optional_str("rate_limit")
    if text is None:
        return None
    match = _RATE.match(text)
    if match is None or float(match[1]) <= 0:
        raise table.error("rate_limit", f"expected a rate such as '50/s' or '600/m', got {text!r}")
    return float(match[1]) / _RATE_UNITS[match[2]]
