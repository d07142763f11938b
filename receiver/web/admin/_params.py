"""Reading the admin API's query parameters: every bad value is a 422 naming its field."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from receiver.errors import Invalid
from receiver.store import DELIVERY_STATES, DeliveryQuery, EventQuery, RejectedQuery

MAX_LIMIT = 500
EVENT_FILTERS = (
    "source",
    "type",
    "status",
    "task_id",
    "business_id",
    "label",
    "flagged",
    "since",
    "until",
)
DELIVERY_FILTERS = ("state", "destination", "event")


class Params:
    """The query string of one request; ``finish()`` refuses parameters nobody read."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {key: value for key, value in values.items() if value != ""}
        self._read: set[str] = set()

    def text(self, name: str, *, choices: Collection[str] | None = None) -> str | None:
        self._read.add(name)
        value = self._values.get(name)
        if value is None:
            return None
        if len(value) > 256:
            raise Invalid(f"{name} is longer than 256 characters", field=name)
        if choices is not None and value not in choices:
            allowed = ", ".join(sorted(choices))
            raise Invalid(f"{name} must be one of {allowed}", field=name)
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise Invalid(f"{name} must be true or false", field=name)
        return value == "true"

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            raise Invalid(f"{name} must be a whole number from {low} to {high}", field=name)
        return int(value)

    def time(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(
                f"{name} must be an RFC 3339 time such as 2026-11-22T10:00:00Z", field=name
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def finish(self) -> None:
        unknown = sorted(set(self._values) - self._read)
        if unknown:
            raise Invalid(f"unknown parameter {unknown[0]!r}", field=unknown[0])


def event_query(params: Params, *, statuses: Collection[str], limit: int = 50) -> EventQuery:
    return EventQuery(
        source=params.text("source"),
        type=params.text("type"),
        status=params.text("status", choices=statuses),
        task_id=params.text("task_id"),
        business_id=params.text("business_id"),
        label=params.text("label"),
        flagged=params.boolean("flagged"),
        since=params.time("since"),
        until=params.time("until"),
        before=params.text("cursor"),
        limit=params.integer("limit", limit, low=1, high=MAX_LIMIT),
    )


def delivery_query(params: Params, *, paginated: bool = True) -> DeliveryQuery:
    """Filters of deliveries; paginated lists are strictly newest first, with a cursor."""
    return DeliveryQuery(
        state=params.text("state", choices=DELIVERY_STATES),
        destination=params.text("destination"),
        event_id=params.text("event"),
        before=params.text("cursor") if paginated else None,
        dead_first=not paginated,
        limit=params.integer("limit", 100, low=1, high=MAX_LIMIT),
    )


def rejected_query(params: Params) -> RejectedQuery:
    """Filters of kept rejected requests, newest first, with a cursor."""
    return RejectedQuery(
        source=params.text("source"),
        retryable=bool(params.boolean("retryable")),
        before=params.text("cursor"),
        limit=params.integer("limit", 50, low=1, high=MAX_LIMIT),
    )
