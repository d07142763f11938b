"""The normalized event: the contract shared by routing, the admin API, the CLI and handlers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from receiver.types import JSONObject


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a provider said about one task, as photohook stores and delivers it.

    Attributes:
        id: ``"evt_"`` and a sortable unique id; the Standard Webhooks ``webhook-id``.
        source: the configured source name it arrived on (``"fotor"``, ``"cropphoto"``, ...).
        kind: the provider: ``"fotor"`` or ``"cropphoto"``.
        type: ``"<kind>.task.<status>"`` for Fotor, ``"<kind>.job.<status>"`` for Crop.photo.
        task_id: Fotor's ``taskId`` or Crop.photo's ``job_id``.
        task_type: Fotor's ``type`` (``"upscale"``, ``"avatar"``, ...); ``"banner"`` for Crop.photo.
        status: Fotor: ``in_progress``, ``completed``, ``failed``; Crop.photo: ``pending``,
            ``processing``, ``completed``, ``failed``.
        business_id: Fotor's ``businessId``, if any.
        labels: Crop.photo's ``job_labels``.
        result_urls: every result URL in the payload (often temporary links).
        flagged: True when any avatar image was flagged as sensitive (``hasHsfw``).
        received_at: when photohook received it (UTC).
        payload: the provider's JSON object, as received.
        via: ``"callback"``, or ``"poll"`` when recovered from the provider's status API.
    """

    id: str
    source: str
    kind: str
    type: str
    task_id: str
    task_type: str
    status: str
    business_id: str | None
    labels: tuple[str, ...]
    result_urls: tuple[str, ...]
    flagged: bool
    received_at: datetime
    payload: JSONObject
    via: str = "callback"

    def to_dict(self) -> dict[str, Any]:
        """The event as the JSON object that is delivered and listed."""
        return {
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "type": self.type,
            "task_id": self.task_id,
            "task_type": self.task_type,
            "status": self.status,
            "business_id": self.business_id,
            "labels": list(self.labels),
            "result_urls": list(self.result_urls),
            "flagged": self.flagged,
            "received_at": format_time(self.received_at),
            "via": self.via,
            "payload": self.payload,
        }


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``: sortable as text."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def format_timestamp(seconds: float) -> str:
    """:func:`format_time` of a Unix timestamp."""
    return format_time(datetime.fromtimestamp(seconds, UTC))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
