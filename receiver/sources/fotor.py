"""Fotor OpenAPI task callbacks.

``{"taskId", "status": 0|1|2, "type", "businessId"?, "resultUrl"?, "avatarResult"?}``; unknown
fields are kept in the payload. Fotor signs nothing: its documented protection is an IP allowlist.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import orjson
from msgspec import Meta, Struct

from receiver.errors import ProviderUnavailable
from receiver.sources._fields import Id, choice, read
from receiver.sources._parsed import ParsedEvent
from receiver.sources._status import StatusAnswer, json_object, request

CALLBACK_IPS = ("54.212.95.175", "44.236.127.35")
API_BASE_URL = "https://api-b.fotor.com"
STATUS_NAMES = {0: "in_progress", 1: "completed", 2: "failed"}
STATUSES = tuple(STATUS_NAMES.values())
TERMINAL_STATUSES = frozenset({"completed", "failed"})


class FotorAvatarImage(Struct, rename="camel"):
    url: str | None = None
    has_hsfw: bool | None = None


class FotorAvatarResult(Struct, rename="camel"):
    template_id: str | None = None
    images: list[FotorAvatarImage] | None = None


class FotorCallback(Struct, rename="camel"):
    """A Fotor task callback; fields it does not name are kept in the payload, unread."""

    task_id: Id
    status: Annotated[
        int | str,
        Meta(extra={"choices": STATUS_NAMES}, extra_json_schema={"enum": list(STATUS_NAMES)}),
    ]
    type: Id
    business_id: str | None = None
    result_url: str | None = None
    avatar_result: list[FotorAvatarResult] | None = None


def parse(body: Any) -> list[ParsedEvent]:
    """The one event in a Fotor callback body; raises InvalidCallback naming the bad field."""
    callback = read(FotorCallback, body)
    status = choice(STATUS_NAMES, callback.status, "status")
    result_urls = [callback.result_url] if callback.result_url else []
    flagged = False
    for result in callback.avatar_result or ():
        for image in result.images or ():
            if image.url:
                result_urls.append(image.url)
            flagged = flagged or bool(image.has_hsfw)
    return [
        ParsedEvent(
            type=f"fotor.task.{status}",
            task_id=callback.task_id,
            task_type=callback.type,
            status=status,
            business_id=callback.business_id or None,
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
