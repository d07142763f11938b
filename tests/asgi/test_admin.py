"""The admin API in process: access, filters, pagination, replay, retry, destinations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from receiver import Settings, create_app
from receiver.tokens import URLTokens
from tests.helpers import asgi_client, fixture

KEY = "admin-test-key"
ADMIN = "admin-token-for-tests"
SINK = "http://93.184.215.14/hooks"  # public; the worker is off in these tests

CONFIG = f"""
[destinations.app]
url = "{SINK}?token=in-the-query"

[destinations.log]
handler = "handlers.log:print_event"

[[routes]]
status = "completed"
to = ["app"]
"""


def make_app(
    tmp_path: Path, admin_token: str | None = ADMIN, database_url: str | None = None
) -> Starlette:
    config = tmp_path / "photohook.toml"
    config.write_text(CONFIG)
    environ = {"PHOTOHOOK_SECRET_KEYS": KEY}
    if admin_token:
        environ["PHOTOHOOK_ADMIN_TOKEN"] = admin_token
    settings = Settings.load(
        config_file=config,
        database_url=database_url or f"sqlite:///{tmp_path / 'db.sqlite'}",
        environ=environ,
    )
    return create_app(settings, worker=False)


@pytest.fixture
async def client(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the admin API on each database engine."""
    async with asgi_client(make_app(tmp_path, database_url=database_url)) as c:
        c.headers["authorization"] = f"Bearer {ADMIN}"
        yield c


async def send(
    client: httpx.AsyncClient, body: dict[str, Any] | None = None, **changes: Any
) -> str:
    body = (body or fixture("fotor/upscale-completed")) | changes
    response = await client.post(f"/hooks/fotor/{URLTokens([KEY]).token('fotor')}", json=body)
    assert response.status_code == 200, response.text
    event_id: str = response.json()["event_ids"][0]
    return event_id


async def test_the_admin_token_is_required(tmp_path: Path) -> None:
    async with asgi_client(make_app(tmp_path)) as client:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {ADMIN}"}):
            response = await client.get("/api/events", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
            assert ADMIN not in response.text
        assert (await client.get("/metrics")).status_code == 401
        ok = await client.get("/api/events", headers={"authorization": f"Bearer {ADMIN}"})
        assert ok.status_code == 200


async def test_without_a_token_only_loopback_clients_are_answered(tmp_path: Path) -> None:
    app = make_app(tmp_path, admin_token=None)
    async with asgi_client(app, client=("127.0.0.1", 5000)) as local:
        assert (await local.get("/api/events")).status_code == 200
        proxied = await local.get("/api/events", headers={"x-forwarded-for": "203.0.113.9"})
        assert proxied.status_code == 403
    async with asgi_client(app, client=("203.0.113.9", 5000)) as remote:
        response = await remote.get("/api/events")
        assert response.status_code == 403
        assert "loopback" in response.json()["error"]["message"]
        assert (await remote.get("/healthz")).status_code == 200


async def test_event_filters_and_cursor_pagination(client: httpx.AsyncClient) -> None:
    ids = [await send(client, taskId=f"task-{i}") for i in range(7)]
    await send(client, fixture("fotor/upscale-in-progress"), taskId="other")
    avatar = await send(client, fixture("fotor/avatar-completed"))
    page = (await client.get("/api/events", params={"status": "completed", "limit": 3})).json()
    assert [item["id"] for item in page["items"]] == [avatar, ids[6], ids[5]]
    seen = [item["id"] for item in page["items"]]
    while page["next_cursor"]:
        page = (
            await client.get(
                "/api/events",
                params={"status": "completed", "limit": 3, "cursor": page["next_cursor"]},
            )
        ).json()
        seen += [item["id"] for item in page["items"]]
    assert seen == [avatar, *reversed(ids)]
    flagged = (await client.get("/api/events", params={"flagged": "true"})).json()["items"]
    assert [e["id"] for e in flagged] == [avatar]
    by_task = (await client.get("/api/events", params={"task_id": "task-3"})).json()["items"]
    assert [e["id"] for e in by_task] == [ids[3]]
    typed = (await client.get("/api/events", params={"type": "fotor.task.in_progress"})).json()
    assert len(typed["items"]) == 1
    assert (await client.get("/api/events", params={"since": "2999-01-01T00:00:00Z"})).json()[
        "items"
    ] == []
    business = await client.get("/api/events", params={"business_id": "order-20261121-0042"})
    assert len(business.json()["items"]) == 8


async def test_labels_filter(client: httpx.AsyncClient) -> None:
    headers = {"x-webhook-secret": "unused"}
    body = fixture("cropphoto/banner-job-completed")
    token = URLTokens([KEY]).token("cropphoto")
    response = await client.post(f"/hooks/cropphoto/{token}", json=body, headers=headers)
    assert response.status_code == 200
    found = (await client.get("/api/events", params={"label": "honda-lot-x"})).json()["items"]
    assert [e["task_id"] for e in found] == ["bj_7d2f0c1e9a"]
    assert (await client.get("/api/events", params={"label": "honda"})).json()["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"flagged": "yes"}, "flagged"),
        ({"since": "yesterday"}, "since"),
        ({"status": "done"}, "status"),
        ({"colour": "red"}, "colour"),
        ({"task_id": "x" * 300}, "task_id"),
    ],
)
async def test_bad_filters_are_422_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/events", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


async def test_event_detail_replay_and_retry(client: httpx.AsyncClient) -> None:
    event_id = await send(client)
    detail = (await client.get(f"/api/events/{event_id}")).json()
    assert detail["event"]["id"] == event_id
    assert detail["request"]["body"].startswith("{")
    assert ["content-type", "application/json"] in detail["request"]["headers"]
    assert [d["destination"] for d in detail["deliveries"]] == ["app"]
    assert detail["deliveries"][0]["attempts"] == 0
    assert detail["deliveries"][0]["history"] == []
    assert (await client.get("/api/events/evt_nope")).status_code == 404

    replayed = await client.post(f"/api/events/{event_id}/replay", json={"destination": "log"})
    assert [d["destination"] for d in replayed.json()["deliveries"]] == ["log"]
    routed = await client.post(f"/api/events/{event_id}/replay")
    assert [d["destination"] for d in routed.json()["deliveries"]] == ["app"]
    unknown = await client.post(f"/api/events/{event_id}/replay", json={"destination": "nope"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "destination"
    assert (await client.post(f"/api/events/{event_id}/replay", content=b"{")).status_code == 400

    in_progress = await send(client, fixture("fotor/upscale-in-progress"), taskId="p")
    nowhere = await client.post(f"/api/events/{in_progress}/replay")
    assert nowhere.status_code == 422

    bulk = await client.post("/api/events/replay", params={"status": "completed"})
    assert bulk.json() == {"events": 1, "deliveries": 1}

    deliveries = (await client.get("/api/deliveries", params={"event": event_id})).json()
    assert len(deliveries["items"]) == 4
    pending = deliveries["items"][0]["id"]
    not_dead = await client.post(f"/api/deliveries/{pending}/retry")
    assert not_dead.status_code == 409
    assert (await client.post("/api/deliveries/dlv_nope/retry")).status_code == 404
    bulk_retry = await client.post("/api/deliveries/retry", params={"destination": "app"})
    assert bulk_retry.json() == {"requeued": 0}
    assert (
        await client.post("/api/deliveries/retry", params={"state": "pending"})
    ).status_code == 422


async def test_destinations_pause_and_resume(client: httpx.AsyncClient) -> None:
    items = {d["name"]: d for d in (await client.get("/api/destinations")).json()["items"]}
    assert set(items) == {"app", "log"}
    assert items["app"]["state"] == "active"
    assert items["app"]["target"] == f"{SINK}?…"  # the query string may hold a credential
    paused = await client.post("/api/destinations/app/pause")
    assert paused.json() == {"name": "app", "state": "paused"}
    items = {d["name"]: d for d in (await client.get("/api/destinations")).json()["items"]}
    assert items["app"]["state"] == "paused"
    assert (await client.post("/api/destinations/app/resume")).json()["state"] == "active"
    assert (await client.post("/api/destinations/nope/pause")).status_code == 404


async def test_metrics(client: httpx.AsyncClient) -> None:
    await send(client)
    await send(client)
    bad = await client.post("/hooks/fotor/wrong", json=fixture("fotor/upscale-completed"))
    assert bad.status_code == 401
    await client.post("/hooks/unknown-source", json={})
    text = (await client.get("/metrics")).text
    assert 'photohook_callbacks_total{outcome="accepted",reason="",source="fotor"} 1.0' in text
    assert 'photohook_callbacks_total{outcome="duplicate",reason="",source="fotor"} 1.0' in text
    assert (
        'photohook_callbacks_total{outcome="rejected",reason="unauthorized",source="fotor"} 1.0'
        in text
    )
    assert 'source="(unknown)"' in text
    assert 'photohook_events_total{type="fotor.task.completed"} 1.0' in text
    assert "photohook_ingest_duration_seconds_bucket" in text
    assert 'photohook_queue_depth{destination="app"} 1.0' in text
    assert 'photohook_dead_deliveries{destination="app"} 0.0' in text


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json", headers={"authorization": ""})).json()
    assert document["openapi"] == "3.1.0"
    assert "/hooks/{source}/{token}" in document["paths"]
    assert "/api/events" in document["paths"]


async def test_every_answer_has_a_request_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 16
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
