"""Reading ``[destinations.NAME]``, and importing the handlers and transforms they name."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from receiver.config.file import Table
from receiver.config.importer import import_from_string
from receiver.destinations import (
    BROKER_KINDS,
    BrokerDestination,
    BrokerKind,
    Destination,
    HandlerDestination,
    HTTPDestination,
    ImportString,
    name_template_error,
    positional,
    shown_url,
    takes_context,
)
from receiver.errors import ConfigError, DeniedDestination
from receiver.retry import DEFAULT_SCHEDULE, RetrySchedule
from receiver.secrets import Secret, UnsetSecret
from receiver.signing import decode_secret
from receiver.ssrf import check_host

_KINDS = ("http", "handler", *BROKER_KINDS)
_SCHEMES = {"rabbitmq": ("amqp", "amqps"), "redis": ("redis", "rediss"), "nats": ("nats", "tls")}
_CLIENTS = {
    "rabbitmq": ("aio_pika", "rabbitmq"),
    "redis": ("redis", "redis"),
    "nats": ("nats", "nats"),
}
_NAME_BYTES = 255  # AMQP's shortstr, which exchange names and routing keys are
_SUBJECT = re.compile(r"[^\s.*>]+(\.[^\s.*>]+)*")
DEFAULT_ROUTING_KEY = "photohook.{source}.{status}"
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RESERVED_HEADERS = frozenset(
    {"host", "content-type", "content-length", "user-agent", "transfer-encoding", "connection"}
)


def imported(destination: Destination) -> Destination:
    """``destination`` with its handler or transform imported, and a broker's client library
    found; raises ConfigError naming the file, the key and the problem."""
    if isinstance(destination, BrokerDestination):
        module, extra = _CLIENTS[destination.kind]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"destination {destination.name}: kind {destination.kind!r} needs the "
                f"{module} package: pip install 'photohook[{extra}]'"
            )
    if isinstance(destination, HandlerDestination) and isinstance(
        destination.handler, ImportString
    ):
        handler = _import(destination.handler)
        try:
            takes_context(handler)
        except TypeError as exc:
            raise destination.handler.error(str(exc)) from None
        return replace(destination, handler=handler)
    if isinstance(destination, HTTPDestination | BrokerDestination) and isinstance(
        destination.transform, ImportString
    ):
        transform = _import(destination.transform)
        if len(positional(transform, required=True)) > 1:
            raise destination.transform.error(
                f'"{destination.transform.value}" must take one argument, the event'
            )
        return replace(destination, transform=transform)
    return destination


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
    kind = table.take_optional_str("kind")
    if kind is not None and kind not in _KINDS:
        raise table.error("kind", f"expected one of {', '.join(_KINDS)}, got {kind!r}")
    for broker in BROKER_KINDS:
        if kind == broker:
            return _read_broker(table, name, broker, import_now=import_now)
    url = table.take_optional_str("url")
    handler_path = table.take_optional_str("handler")
    if (url is None) == (handler_path is None):
        raise table.error("url", "give either url (HTTP) or handler (a Python function), not both")
    if kind is not None and kind != ("http" if url is not None else "handler"):
        key = "handler" if kind == "http" else "url"
        raise table.error(key, f"a destination of kind {kind!r} has no {key}")
    retry, max_in_flight, rate_limit = _delivery(table)
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
    secrets = _signing_secrets(table)
    headers = table.take_table("headers")
    extra = {}
    for key, value in headers.data.items():
        if not isinstance(value, str):
            raise headers.error(key, f"expected a string, got {value!r}")
        if key.lower() in _RESERVED_HEADERS or key.lower().startswith("webhook-"):
            raise headers.error(key, "photohook sets this header itself")
        extra[key] = value
    transform = _transform(table)
    timeout = _timeout(table)
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


def _read_broker(table: Table, name: str, kind: BrokerKind, *, import_now: bool) -> Destination:
    retry, max_in_flight, rate_limit = _delivery(table)
    urls = table.take_secrets("url")
    if len(urls) != 1:
        raise table.error(
            "url",
            f"a {kind} destination needs the broker's url (or env:NAME)"
            if not urls
            else "give one URL",
        )
    [url] = urls
    shown = _broker_url(table, kind, url)
    topic_key = BROKER_KINDS[kind]
    topic = table.take_optional_str(topic_key)
    if topic is None:
        raise table.error(topic_key, f"a {kind} destination names its {topic_key}")
    _check_template(table, topic_key, topic, empty_ok=kind == "rabbitmq", subject=kind == "nats")
    routing_key = ""
    if kind == "rabbitmq":
        routing_key = table.take_str("routing_key", DEFAULT_ROUTING_KEY)
        _check_template(table, "routing_key", routing_key, empty_ok=bool(topic))
    max_len = None
    if kind == "redis" and "max_len" in table:
        max_len = table.take_int("max_len", 0, minimum=1)
    destination = BrokerDestination(
        name=name,
        kind=kind,
        url=url,
        shown_url=shown,
        topic=topic,
        routing_key=routing_key,
        max_len=max_len,
        secrets=_signing_secrets(table),
        timeout=_timeout(table),
        retry=retry,
        max_in_flight=max_in_flight,
        rate_limit=rate_limit,
        transform=_transform(table),
    )
    table.finish()
    return imported(destination) if import_now else destination


def _broker_url(table: Table, kind: str, url: Secret) -> str:
    """The URL as it may be shown; checks its scheme, unless an unset ``env:`` hides it."""
    if isinstance(url, UnsetSecret):
        return f"env:{url.variable}"
    text = url.reveal()
    parts = urlsplit(text)
    if parts.scheme not in _SCHEMES[kind] or not parts.hostname:
        schemes = " or ".join(f"{scheme}://" for scheme in _SCHEMES[kind])
        raise table.error("url", f"expected a {schemes} URL for a {kind} destination")
    try:
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError:
        raise table.error("url", "bad port in the URL") from None
    return shown_url(text)


def _check_template(
    table: Table, key: str, template: str, *, empty_ok: bool, subject: bool = False
) -> None:
    if not template and not empty_ok:
        raise table.error(key, "cannot be empty")
    problem = name_template_error(template)
    if problem is not None:
        raise table.error(key, problem)
    # Each field renders to at most a source's name or an event type: well under 64 bytes.
    longest = len(re.sub(r"\{\w+\}", "x" * 64, template).encode())
    if longest > _NAME_BYTES:
        raise table.error(key, f"too long: a name may have {_NAME_BYTES} bytes at most")
    if subject and (_SUBJECT.fullmatch(template) is None):
        raise table.error(
            key,
            f"{template!r} is not a NATS subject to publish to: dot-separated tokens, "
            "without spaces or the wildcards * and >",
        )


def _delivery(table: Table) -> tuple[RetrySchedule, int, float | None]:
    """What every kind of destination has: its retry schedule, concurrency and rate limit."""
    schedule = table.take_list("retry_schedule", default=None)
    delays: tuple[float, ...] = DEFAULT_SCHEDULE
    if schedule is not None:
        delays = tuple(
            table.duration_of("retry_schedule", index, item) for index, item in enumerate(schedule)
        )
    return (
        RetrySchedule(delays=delays),
        table.take_int("max_in_flight", 16, minimum=1),
        _rate(table),
    )


def _signing_secrets(table: Table) -> tuple[Secret, ...]:
    secrets = table.take_secrets("secret")
    for index, secret in enumerate(secrets):
        if isinstance(secret, UnsetSecret):
            continue
        try:
            decode_secret(secret.reveal())
        except ValueError as exc:
            raise table.error(f"secret[{index}]", str(exc)) from None
    return secrets


def _transform(table: Table) -> ImportString | None:
    path = table.take_optional_str("transform")
    return _import_string(table, "transform", path) if path else None


def _timeout(table: Table) -> float:
    timeout = table.take_duration("timeout", 15.0)
    if timeout <= 0:
        raise table.error("timeout", "must be more than 0")
    return timeout


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
