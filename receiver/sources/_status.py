"""What asking a provider's status API about one task can come to."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import orjson

from receiver.errors import KeyRejected, ProviderUnavailable
from receiver.types import JSONObject


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """The provider's answer: ``document`` is shaped like a callback body and parses the same
    way; None when the provider does not know the task."""

    document: JSONObject | None
    body: bytes


async def request(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: object
) -> httpx.Response:
    """Send, classifying transport errors and refusals; the caller reads a 2xx or 404 answer."""
    try:
        response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"{type(exc).__name__}: {exc or 'no answer'}") from None
    if response.status_code in (401, 403):
        raise KeyRejected(f"the provider answered {response.status_code} to the API key")
    if response.status_code != 404 and not response.is_success:
        raise ProviderUnavailable(f"the provider answered HTTP {response.status_code}")
    return response


def json_object(response: httpx.Response) -> JSONObject:
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise ProviderUnavailable("the provider's answer is not JSON") from None
    if not isinstance(document, dict):
        raise ProviderUnavailable("the provider's answer is not a JSON object")
    return document
