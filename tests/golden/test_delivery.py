"""A delivered webhook as a real HTTP sink receives it: its signatures verified with the
standardwebhooks library, then its body and headers, with the values made per delivery masked,
compared with golden files."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from receiver import __version__
from receiver.tokens import URLTokens
from tests.helpers import fixture
from tests.integration.conftest import KEY
from tests.integration.servers import Received, Sink, eventually

from .golden import check_json

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
EVENT_ID = re.compile(r"evt_[0-9A-HJKMNP-TV-Z]{26}")
SIGNATURE = re.compile(r"v1,[A-Za-z0-9+/]{43}=")


def normalised(received: Received, sink: str, secrets: list[str]) -> dict[str, Any]:
    """Body and headers with exactly these masked, each after checking its shape: the event id
    (body ``id``, header ``webhook-id``), body ``received_at``, ``webhook-timestamp``,
    ``webhook-signature`` (after verifying each signature), ``content-length`` (it counts
    the masked values), ``host`` (the sink's port) and the release in ``user-agent``."""
    headers, body = dict(received.headers), received.json()
    for secret in secrets:  # each secret of a rotation verifies the delivery on its own
        Webhook(secret).verify(received.body, headers)
    assert EVENT_ID.fullmatch(headers["webhook-id"]) and body["id"] == headers["webhook-id"]
    headers["webhook-id"] = body["id"] = "<event id>"
    received_at = datetime.fromisoformat(body["received_at"])
    assert body["received_at"].endswith("Z") and received_at.tzinfo == UTC
    assert abs(received_at.timestamp() - time.time()) < 600
    body["received_at"] = "<received_at>"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 600
    headers["webhook-timestamp"] = "<unix seconds of the attempt>"
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == len(secrets) and all(SIGNATURE.fullmatch(s) for s in signatures)
    headers["webhook-signature"] = " ".join("v1,<signature>" for _ in signatures)
    assert int(headers["content-length"]) == len(received.body)
    headers["content-length"] = "<length of the body>"
    assert headers["host"] == urlsplit(sink).netloc
    headers["host"] = "<the sink's host:port>"
    assert headers["user-agent"] == f"photohook/{__version__}"
    headers["user-agent"] = "photohook/<photohook version>"
    return {"headers": headers, "body": body}


async def test_delivered_bodies_and_headers_are_the_golden_ones(
    photohook: Callable[..., Any], sink_url: Callable[[Sink], str]
) -> None:
    app_sink, rotating_sink = Sink(SECRET), Sink(OLD_SECRET)
    app_url, rotating_url = sink_url(app_sink), sink_url(rotating_sink)
    app = await photohook(
        '[sources.fotor]\nkind = "fotor"\n[sources.cropphoto]\nkind = "cropphoto"\n'
        f'[destinations.app]\nurl = "{app_url}/hooks/photohook"\nsecret = "{SECRET}"\n'
        'headers = { "X-Team" = "imaging" }\n'
        f'[destinations.rotating]\nurl = "{rotating_url}/in"\n'
        f'secret = ["{SECRET}", "{OLD_SECRET}"]\n'
        '[[routes]]\nsource = "fotor"\nto = ["app"]\n'
        '[[routes]]\nsource = "cropphoto"\nto = ["rotating"]\n'
    )
    await app.send(fixture("fotor/avatar-completed"))
    crop_hook = f"{app.base_url}/hooks/cropphoto/{URLTokens([KEY]).token('cropphoto')}"
    async with httpx.AsyncClient() as client:
        answer = await client.post(crop_hook, json=fixture("cropphoto/banner-job-completed"))
    assert answer.status_code == 200, answer.text
    await eventually(lambda: len(app_sink.received) == 1 and len(rotating_sink.received) == 1)
    await eventually(lambda: app.all_in("delivered", 2))
    [fotor_delivery], [crop_delivery] = app_sink.received, rotating_sink.received
    assert fotor_delivery.verified and crop_delivery.verified
    check_json(
        "delivery/fotor-avatar-completed.json", normalised(fotor_delivery, app_url, [SECRET])
    )
    check_json(
        "delivery/cropphoto-job-completed-two-secrets.json",
        normalised(crop_delivery, rotating_url, [SECRET, OLD_SECRET]),
    )
