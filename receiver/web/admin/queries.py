"""Reading the admin API's query strings and bodies into their structs, in one decode and
validation pass: every bad value is a 422 naming its field, in words derived from its type."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import TypeVar

import msgspec
from msgspec import inspect

from receiver.errors import Invalid, InvalidJSON
from receiver.store import DeliveryQuery, EventQuery, RejectedQuery
from receiver.web.admin.contract import (
    Body,
    DeliveryList,
    EventFilters,
    EventList,
    EventReplay,
    Params,
    RejectedList,
)

P = TypeVar("P", bound=Params)
B = TypeVar("B", bound=Body)
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED = re.compile(r"`(?P<name>[^`]+)`$")


def read_params(kind: type[P], values: Mapping[str, str]) -> P:
    """The query string as ``kind``; empty values count as absent."""
    given = {key: value for key, value in values.items() if value != ""}
    try:
        return msgspec.convert(given, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise _refusal(kind, str(exc), unknown="parameter") from None


def read_body(kind: type[B], raw: bytes) -> B:
    """An optional JSON object body as ``kind``: an empty body is an empty object."""
    try:
        return msgspec.json.decode(raw if raw.strip() else b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise _refusal(kind, str(exc), unknown="field") from None
    except msgspec.DecodeError:
        raise InvalidJSON() from None


def _refusal(kind: type[msgspec.Struct], error: str, *, unknown: str) -> Invalid:
    at = _AT.search(error)
    path = at["path"] if at else ""
    problem = error[: at.start()] if at else error
    named = _NAMED.search(problem)
    if problem.startswith("Object contains unknown field") and named:
        return Invalid(f"unknown {unknown} {named['name']!r}", field=named["name"])
    if problem.startswith("Object missing required field") and named:
        return Invalid(f"{named['name']} is required", field=named["name"])
    if not path:
        return Invalid("the body must be a JSON object", field="")
    name = path.split(".")[0].split("[")[0]
    return Invalid(_rule(kind, name, problem), field=name)


def _rule(kind: type[msgspec.Struct], name: str, problem: str) -> str:
    """What a value of the field ``name`` must be, in words."""
    field = _types(kind).get(name)
    declared = field.type if field is not None else None
    while isinstance(declared, inspect.Metadata | inspect.UnionType):
        if isinstance(declared, inspect.Metadata):
            declared = declared.type
        else:
            declared = next(t for t in declared.types if not isinstance(t, inspect.NoneType))
    if isinstance(declared, inspect.EnumType):
        return f"{name} must be one of {', '.join(sorted(m.value for m in declared.cls))}"
    if isinstance(declared, inspect.LiteralType):
        if set(declared.values) == {"true", "false"}:
            return f"{name} must be true or false"
        return f"{name} must be one of {', '.join(sorted(map(str, declared.values)))}"
    if isinstance(declared, inspect.BoolType):
        return f"{name} must be true or false"
    if isinstance(declared, inspect.IntType):
        return f"{name} must be a whole number from {declared.ge} to {declared.le}"
    if isinstance(declared, inspect.StrType):
        low, high = declared.min_length, declared.max_length
        if problem.startswith("Expected `str") and ", got" in problem:
            return f"{name} must be a string"
        if high is None:
            return f"{name} is required"
        if low:
            return f"{name} must be {low} to {high} characters"
        return f"{name} is longer than {high} characters"
    return f"{name}: {problem}"


@cache
def _types(kind: type[msgspec.Struct]) -> dict[str, inspect.Field]:
    info = inspect.type_info(kind)
    assert isinstance(info, inspect.StructType)
    return {field.encode_name: field for field in info.fields}


def _time(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(
            f"{name} must be an RFC 3339 time such as 2026-11-22T10:00:00Z", field=name
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _flag(value: str | None) -> bool | None:
    return None if value is None else value == "true"


def event_query(params: EventFilters) -> EventQuery:
    """The store query of event filters (with a page, for ``EventList`` and ``EventReplay``)."""
    limit = params.limit if isinstance(params, EventList | EventReplay) else 50
    return EventQuery(
        source=params.source,
        type=params.type,
        status=params.status,
        task_id=params.task_id,
        business_id=params.business_id,
        label=params.label,
        flagged=_flag(params.flagged),
        since=_time("since", params.since),
        until=_time("until", params.until),
        before=params.cursor if isinstance(params, EventList) else None,
        limit=limit,
    )


def event_filters(values: Mapping[str, str]) -> EventQuery:
    """The events that filters given as text match, read as ``GET /api/events`` reads them."""
    return event_query(read_params(EventList, values))


def delivery_query(params: DeliveryList) -> DeliveryQuery:
    """A page of deliveries, strictly newest first, with a cursor."""
    return DeliveryQuery(
        state=params.state,
        destination=params.destination,
        event_id=params.event,
        before=params.cursor,
        dead_first=False,
        limit=params.limit,
    )


def rejected_query(params: RejectedList) -> RejectedQuery:
    """Filters of kept rejected requests, newest first, with a cursor."""
    return RejectedQuery(
        source=params.source,
        retryable=bool(_flag(params.retryable)),
        before=params.cursor,
        limit=params.limit,
    )
