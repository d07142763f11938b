"""Where events go: HTTP endpoints (signed the Standard Webhooks way) and handler functions."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from receiver.config.file import Table
from receiver.config.importer import import_from_string
from receiver.config.secrets import Secret, UnsetSecret
from receiver.delivery.context import DeliveryContext
from receiver.delivery.retry import DEFAULT_SCHEDULE, RetrySchedule
from receiver.delivery.signing import decode_secret
from receiver.delivery.ssrf import DeniedDestination, check_host
from receiver.errors import ConfigError
from receiver.events import Event

#: ``def handle(event)`` or ``def handle(event, context)``; ``async def`` alike.
Handler: TypeAlias = (
    Callable[[Event], Awaitable[None] | None]
    | Callable[[Event, DeliveryContext], Awaitable[None] | None]
)
Transform: TypeAlias = Callable[[Event], Any]


@dataclass(frozen=True, slots=True)
class ImportString:
    """A handler or transform the config file names as ``"module:function"``, not imported yet:
    only what delivers or checks imports it, so the web process of ``serve --no-worker`` needs
    neither the modules nor their dependencies."""

    value: str
    where: str  #: the file and key that give it, for errors

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.where}: {message}")


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
    transform: Transform | ImportString | None = None
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
    handler: Handler | ImportString
    timeout: float = 30.0
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    max_in_flight: int = 16
    rate_limit: float | None = None

    @property
    def target(self) -> str:
        if isinstance(self.handler, ImportString):
            return self.handler.value
        return f"{self.handler.__module__}:{self.handler.__qualname__}"


Destination: TypeAlias = HTTPDestination | HandlerDestination


def imported(destination: Destination) -> Destination:
    """``destination`` with its handler or transform imported; raises ConfigError naming the
    file, the key and the problem."""
    if isinstance(destination, HandlerDestination) and isinstance(
        destination.handler, ImportString
    ):
        handler = _import(destination.handler)
        try:
            takes_context(handler)
        except TypeError as exc:
            raise destination.handler.error(str(exc)) from None
        return replace(destination, handler=handler)
    if isinstance(destination, HTTPDestination) and isinstance(destination.transform, ImportString):
        transform = _import(destination.transform)
        if len(_positional(transform, required=True)) > 1:
            raise destination.transform.error(
                f'"{destination.transform.value}" must take one argument, the event'
            )
        return replace(destination, transform=transform)
    return destination


def takes_context(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` is called with the context too: its second positional parameter is
    required. A defaulted one, or ``*args``, was valid before contexts existed and keeps getting
    the event alone. Raises TypeError for one that needs more than two arguments, or none."""
    name = getattr(handler, "__qualname__", repr(handler))
    required = _positional(handler, required=True)
    every = _positional(handler, required=False)
    variadic = any(p.kind is p.VAR_POSITIONAL for p in _parameters(handler))
    if len(required) > 2:
        raise TypeError(f'"{name}" must take the event, and at most a context besides')
    if not every and not variadic:
        raise TypeError(f'"{name}" must take the event as its argument')
    return len(required) == 2


def _parameters(target: Callable[..., Any]) -> list[inspect.Parameter]:
    return list(inspect.signature(target).parameters.values())


def _positional(target: Callable[..., Any], *, required: bool) -> list[inspect.Parameter]:
    return [
        p
        for p in _parameters(target)
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and (p.default is p.empty or not required)
    ]


def _import(import_str: ImportString) -> Any:
    try:
        target = import_from_string(import_str.value)
    except ConfigError as exc:
        raise import_str.error(exc.message) from None
    if not callable(target):
        raise import_str.error(f'"{import_str.value}" is not callable')
    return target


def read_destination(
    table: Table, name: str, *, allow_private: bool, import_now: bool = True
) -> Destination:
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
        timeout = table.take_duration("timeout", 30.0)
        table.finish()
        destination: Destination = HandlerDestination(
            name=name,
            handler=_import_string(table, "handler", handler_path),
            timeout=timeout,
            retry=retry,
            max_in_flight=max_in_flight,
            rate_limit=rate_limit,
        )
        return imported(destination) if import_now else destination
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
    transform = _import_string(table, "transform", transform_path) if transform_path else None
    timeout = table.take_duration("timeout", 15.0)
    if timeout <= 0:
        raise table.error("timeout", "must be more than 0")
    table.finish()
    destination = HTTPDestination(
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
    return imported(destination) if import_now else destination


def _import_string(table: Table, key: str, value: str) -> ImportString:
    return ImportString(value, where=f"{table.file}: {table.key(key)}")


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
