"""The normalized event: the contract shared by routing, the admin API, the CLI and handlers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from receiver.types import JSONObject


@dataclass(frozen=True, slots=True)
class KeptResult:
    """A result file photohook copied into its result store (``keep_results``).

    Attributes:
        url: the provider's URL (often temporary).
        status: ``"kept"``, or ``"missing"`` when it could not be fetched within the retry
            schedule (then ``error`` says why).
        kept_url: a stable URL of the kept copy (a signed photohook link, or a presigned one),
            made when the event is delivered; None when missing.
        size, content_type, sha256: of the kept copy.
        position: the file's index in the event's ``result_urls``.
        key: where the copy is in the result store (not delivered).
    """

    url: str
    status: str
    kept_url: str | None = None
    size: int | None = None
    content_type: str | None = None
    sha256: str | None = None
    error: str | None = None
    position: int = 0
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As delivered, in the event's ``kept_results``."""
        return {
            "url": self.url,
            "kept_url": self.kept_url,
            "status": self.status,
            "size": self.size,
            "content_type": self.content_type,
            "sha256": self.sha256,
            "error": self.error,
        }


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
        kept_results: its result files as kept in photohook's result store, in the order of
            ``result_urls``, when its source or a route says ``keep_results`` (else empty).
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
    kept_results: tuple[KeptResult, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The event as the JSON object that is delivered and listed; ``kept_results`` only
        where its files were kept."""
        found: dict[str, Any] = {
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
        if self.kept_results:
            found["kept_results"] = [kept.to_dict() for kept in self.kept_results]
        return found


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``: sortable as text.

    Each callback's times are formatted as it is stored; ``isoformat`` cost a third of that
    under callgrind, so the text up to the second is kept from the last time formatted."""
    global _last_second
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    second = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    last = _last_second
    if last[0] != second:
        text = moment.replace(tzinfo=None, microsecond=0).isoformat()
        last = _last_second = (second, f"{text}.")
    return f"{last[1]}{moment.microsecond:06d}Z"


#: The second last formatted, as (year, month, day, hour, minute, second) and as text up to its
#: fraction. Threads may race to replace it; each replaces it whole.
_last_second: tuple[tuple[int, ...], str] = ((), "")


def format_timestamp(seconds: float) -> str:
    """:func:`format_time` of a Unix timestamp."""
    return format_time(datetime.fromtimestamp(seconds, UTC))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
