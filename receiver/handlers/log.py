"""``handlers.log:print_event``: one structured log line per event."""

from __future__ import annotations

import logging

import orjson

from receiver import Event

logger = logging.getLogger("photohook.handlers.log")


def print_event(event: Event) -> None:
    """Log the event's summary as one JSON line (the payload is left out)."""
    summary = {
        "event_id": event.id,
        "type": event.type,
        "source": event.source,
        "task_id": event.task_id,
        "task_type": event.task_type,
        "status": event.status,
        "business_id": event.business_id,
        "labels": list(event.labels),
        "result_urls": list(event.result_urls),
        "flagged": event.flagged,
        "received_at": event.to_dict()["received_at"],
    }
    logger.info("%s", orjson.dumps(summary).decode())
