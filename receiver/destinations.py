"""Where events go: HTTP endpoints (signed the Standard Webhooks way), handler functions, and
the team's message brokers (RabbitMQ, Redis Streams, NATS JetStream)."""

from __future__ import annotations

import inspect
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

from receiver.context import DeliveryContext
from receiver.errors import ConfigError
from receiver.events import Event
from receiver.retry import RetrySchedule
from receiver.secrets import Secret
from receiver.signing import decode_secret

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


BrokerKind: TypeAlias = Literal["rabbitmq", "redis", "nats"]
#: The broker kinds, and the key that names where each publishes.
BROKER_KINDS: dict[BrokerKind, str] = {"rabbitmq": "exchange", "redis": "stream", "nats": "subject"}
#: What a broker destination's names may use: ``"photohook.{source}.{status}"``.
NAME_FIELDS = ("source", "type", "status")


@dataclass(frozen=True, kw_only=True)
class BrokerDestination:
    """``[destinations.NAME]`` with ``kind = "rabbitmq"``, ``"redis"`` or ``"nats"``: events are
    published to a message broker, and delivered once the broker has confirmed them."""

    name: str
    kind: BrokerKind
    url: Secret  #: may carry credentials, so it is a secret
    shown_url: str  #: the URL without credentials, for logs, the API and the dashboard
    topic: str  #: the exchange, stream or subject; a template of :data:`NAME_FIELDS`
    routing_key: str = ""  #: RabbitMQ's, a template too
    max_len: int | None = None  #: Redis' approximate ``MAXLEN`` of each stream
    secrets: tuple[Secret, ...] = ()
    timeout: float = 15.0
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    max_in_flight: int = 16
    rate_limit: float | None = None
    transform: Transform | ImportString | None = None

    @property
    def target(self) -> str:
        return f"{self.shown_url} {BROKER_KINDS[self.kind]} {self.topic}"

    def signing_keys(self) -> list[bytes]:
        return [decode_secret(secret.reveal()) for secret in self.secrets]


Destination: TypeAlias = HTTPDestination | HandlerDestination | BrokerDestination


def shown_url(url: str) -> str:
    """``url`` as it may be shown: without its user, password, query and fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def render_name(template: str, event: Event) -> str:
    """A broker destination's exchange, stream, subject or routing key for ``event``."""
    return template.format(source=event.source, type=event.type, status=event.status)


def name_template_error(template: str) -> str | None:
    """Why ``template`` is not a valid name template, or None."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"{exc} in {template!r}"
    for _, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in NAME_FIELDS or spec or conversion:
            allowed = ", ".join("{" + name + "}" for name in NAME_FIELDS)
            return f"{template!r} may use only {allowed}"
    return None


def takes_context(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` is called with the context too: its second positional parameter is
    required. A defaulted one, or ``*args``, was valid before contexts existed and keeps getting
    the event alone. Raises TypeError for one that needs more than two arguments, or none."""
    name = getattr(handler, "__qualname__", repr(handler))
    required = positional(handler, required=True)
    every = positional(handler, required=False)
    variadic = any(p.kind is p.VAR_POSITIONAL for p in _parameters(handler))
    if len(required) > 2:
        raise TypeError(f'"{name}" must take the event, and at most a context besides')
    if not every and not variadic:
        raise TypeError(f'"{name}" must take the event as its argument')
    return len(required) == 2


def _parameters(target: Callable[..., Any]) -> list[inspect.Parameter]:
    return list(inspect.signature(target).parameters.values())


def positional(target: Callable[..., Any], *, required: bool) -> list[inspect.Parameter]:
    """The parameters ``target`` may be given by position (only those without a default, if
    ``required``)."""
    return [
        p
        for p in _parameters(target)
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and (p.default is p.empty or not required)
    ]
