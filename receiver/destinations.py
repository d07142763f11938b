"""Where events go: HTTP endpoints (signed the Standard Webhooks way) and handler functions."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias
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


Destination: TypeAlias = HTTPDestination | HandlerDestination


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
    return [
        p
        for p in _parameters(target)
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and (p.default is p.empty or not required)
    ]
