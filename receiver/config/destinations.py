"""Reading ``[destinations.NAME]``, and importing the handlers and transforms they name."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from receiver.config.file import Table
from receiver.config.importer import import_from_string
from receiver.destinations import (
    Destination,
    HandlerDestination,
    HTTPDestination,
    ImportString,
    positional,
    takes_context,
)
from receiver.errors import ConfigError, DeniedDestination
from receiver.retry import DEFAULT_SCHEDULE, RetrySchedule
from receiver.secrets import UnsetSecret
from receiver.signing import decode_secret
from receiver.ssrf import check_host

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RESERVED_HEADERS = frozenset(
    {"host", "content-type", "content-length", "user-agent", "transfer-encoding", "connection"}
)


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
