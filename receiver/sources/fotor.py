"""Fotor OpenAPI task callbacks.

``{"taskId", "status": 0|1|2, "type", "businessId"?, "resultUrl"?, "avatarResult"?}``; unknown
fields are kept in the payload. Fotor signs nothing: its documented protection is an IP allowlist.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from receiver.errors import ProviderUnavailable
from receiver.sources._fields import (
    choice,
    optional_bool,
    optional_objects,
    optional_str,
    require_id,
    require_object,
)
from receiver.sources._parsed import ParsedEvent
from receiver.sources._status import StatusAnswer, json_object, request

CALLBACK_IPS = ("54.212.95.175", "44.236.127.35")
API_BASE_URL = "https://api-b.fotor.com"
STATUS_NAMES = {0: "in_progress", 1: "completed", 2: "failed"}
STATUSES = tuple(STATUS_NAMES.values())
TERMINAL_STATUSES = frozenset({"completed", "failed"})


def parse(body: Any) -> list[ParsedEvent]:
    """The one event in a Fotor callback body; raises InvalidCallback naming the bad field."""
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


async def fetch_status(
    client: httpx.AsyncClient, base_url: str, api_key: str, task_id: str
) -> StatusAnswer:
    """Query Task Details: ``GET /v1/aiart/tasks/{taskId}``; code ``000`` is success."""
    response = await request(
        client,
        "GET",
        f"{base_url}/v1/aiart/tasks/{task_id}",
        headers={"Authorization": f"Bearer {api_key}"},
    )
    if response.status_code == 404:
        return StatusAnswer(None, response.content)
    answer = json_object(response)
    if answer.get("code") != "000":
        raise ProviderUnavailable(
            f"Fotor answered code {answer.get('code')!r}: {answer.get('msg')}"
        )
    data = answer.get("data")
    if not isinstance(data, dict) or data.get("taskId") != task_id:
        return StatusAnswer(None, response.content)
    return StatusAnswer(data, orjson.dumps(data))
