"""Fotor OpenAPI task callbacks.

``{"taskId", "status": 0|1|2, "type", "businessId"?, "resultUrl"?, "avatarResult"?}``; unknown
fields are kept in the payload. Fotor signs nothing: its documented protection is an IP allowlist.
"""

from __future__ import annotations

from typing import Any

from ._fields import (
    choice,
    optional_bool,
    optional_objects,
    optional_str,
    require_id,
    require_object,
)
from ._parsed import ParsedEvent

CALLBACK_IPS = ("54.212.95.175", "44.236.127.35")
STATUS_NAMES = {0: "in_progress", 1: "completed", 2: "failed"}
STATUSES = tuple(STATUS_NAMES.values())
TERMINAL_STATUSES = frozenset({"completed", "failed"})


def parse(body: Any) -> list[ParsedEvent]:
    """The one event in a Fotor callback body; raises ValidationFailed naming the bad field."""
    doc = require_object(body, "")
    task_id = require_id(doc, "taskId")
    status = choice(doc, "status", STATUS_NAMES)
    task_type = require_id(doc, "type")
    business_id = optional_str(doc, "businessId")
    result_urls = []
    result_url = optional_str(doc, "resultUrl")
    if result_url:
        result_urls.append(result_url)
    flagged = False
    for result_path, result in optional_objects(doc, "avatarResult"):
        optional_str(result, "templateId", result_path)
        for image_path, image in optional_objects(result, "images", result_path):
            url = optional_str(image, "url", image_path)
            if url:
                result_urls.append(url)
            flagged = optional_bool(image, "hasHsfw", image_path) or flagged
    return [
        ParsedEvent(
            type=f"fotor.task.{status}",
            task_id=task_id,
            task_type=task_type,
            status=status,
            business_id=business_id or None,
            labels=(),
            result_urls=tuple(result_urls),
            flagged=flagged,
        )
    ]
