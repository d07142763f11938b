"""What an HTTP or broker destination receives: the event's JSON and its Standard Webhooks
headers, built the same way for both, so one consumer library verifies either."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from receiver.events import Event
from receiver.signing import signature_header


class TransformFailed(Exception):
    """The destination's transform raised; the message names its exception."""


@dataclass(frozen=True, slots=True)
class Message:
    """A signed body: ``headers`` holds ``webhook-id``, ``webhook-timestamp`` and, when the
    destination has secrets, ``webhook-signature``."""

    id: str
    timestamp: int
    body: bytes
    headers: dict[str, str]


def compose(
    event: Event,
    message_id: str,
    keys: Sequence[bytes],
    transform: Callable[[Event], Any] | None = None,
) -> Message | None:
    """The message for ``event``, or None when the transform gives None (nothing to send)."""
    try:
        document = transform(event) if transform is not None else event.to_dict()
    except Exception as exc:
        raise TransformFailed(f"transform failed: {type(exc).__name__}: {exc}") from exc
    if document is None:
        return None
    body = orjson.dumps(document)
    timestamp = int(time.time())
    headers = {"webhook-id": message_id, "webhook-timestamp": str(timestamp)}
    if keys:
        headers["webhook-signature"] = signature_header(keys, message_id, timestamp, body)
    return Message(message_id, timestamp, body, headers)
