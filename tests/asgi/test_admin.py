"""The admin API in process: access, filters, pagination, replay, retry, destinations; and at its
edges: an unexpected error anywhere answers 503 in the JSON error shape, ``/api/tasks`` refuses
bad input field by field, a forged or expired dashboard session is a stranger's."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner
from starlette.applications import Starlette

from receiver import Settings, create_app
from receiver.tokens import URLTokens
from receiver.web.admin.access import SESSION_COOKIE, SESSION_SECONDS
from tests.helpers import asgi_client, fixture

from .test_ingest import assert_error

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


# The edges, on an application with a source that has an API key and one that has secrets.
EDGE_ADMIN = "admin-token-for-edge-tests"


EDGE_CONFIG = """
[sources.fotor]
api_key = "fotor-api-key-for-edge-tests"
api_base_url = "http://127.0.0.1:9"
[sources.crop]
kind = "cropphoto"
secrets = ["s"]
"""


@pytest.fixture
def edge_app(tmp_path: Path) -> Starlette:
    config = tmp_path / "photohook.toml"
    config.write_text(EDGE_CONFIG)
    settings = Settings.load(
        config_file=config,
        database_url=f"sqlite:///{tmp_path / 'photohook.db'}",
        environ={"PHOTOHOOK_SECRET_KEYS": "k", "PHOTOHOOK_ADMIN_TOKEN": EDGE_ADMIN},
    )
    return create_app(settings, worker=False)


@pytest.fixture
async def edge_client(edge_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the answers the server sends, even to exceptions it raises again."""
    async with edge_app.router.lifespan_context(edge_app):
        transport = httpx.ASGITransport(
            app=edge_app, client=("203.0.113.9", 40000), raise_app_exceptions=False
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://photohook.test") as c:
            yield c


ADMIN_HEADERS = {"authorization": f"Bearer {EDGE_ADMIN}"}


async def test_an_unexpected_error_on_any_route_answers_503_in_the_error_shape(
    edge_app: Starlette, edge_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug of ours, with /private/detail")

    monkeypatch.setattr(edge_app.state.store, "list_events", broken)
    monkeypatch.setattr(edge_app.state.store, "list_tasks", broken)
    for path in ("/api/events", "/api/tasks"):
        response = await edge_client.get(path, headers=ADMIN_HEADERS)
        assert_error(response, 503, "unavailable")
        assert "a bug of ours" not in response.text
        assert "/private/detail" not in response.text
    monkeypatch.undo()
    assert (await edge_client.get("/api/events", headers=ADMIN_HEADERS)).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b'["fotor", "t"]', 422, "invalid_payload", ""),
        (b'{"task_id": "t"}', 422, "invalid_payload", "source"),
        (b'{"source": "", "task_id": "t"}', 422, "invalid_payload", "source"),
        (b'{"source": 7, "task_id": "t"}', 422, "invalid_payload", "source"),
        (b'{"source": "nobody", "task_id": "t"}', 422, "invalid_payload", "source"),
        (b'{"source": "crop", "task_id": "t"}', 422, "invalid_payload", "source"),
        (b'{"source": "fotor"}', 422, "invalid_payload", "task_id"),
        (b'{"source": "fotor", "task_id": ""}', 422, "invalid_payload", "task_id"),
        (b'{"source": "fotor", "task_id": ["t"]}', 422, "invalid_payload", "task_id"),
        (
            b'{"source": "fotor", "task_id": "' + b"t" * 257 + b'"}',
            422,
            "invalid_payload",
            "task_id",
        ),
        (
            b'{"source": "fotor", "task_id": "t", "business_id": 1}',
            422,
            "invalid_payload",
            "business_id",
        ),
        (b'{"source": "fotor", "task_id": "t", "owner": "x"}', 422, "invalid_payload", "owner"),
    ],
)
async def test_tracking_a_task_refuses_bad_input_naming_the_field(
    edge_client: httpx.AsyncClient, body: bytes, status: int, code: str, field: str | None
) -> None:
    headers = ADMIN_HEADERS | {"content-type": "application/json"}
    response = await edge_client.post("/api/tasks", content=body, headers=headers)
    assert_error(response, status, code, field)
    listed = await edge_client.get("/api/tasks", headers=ADMIN_HEADERS)
    assert listed.json() == {"items": []}  # nothing tracked


async def test_tracking_and_listing_tasks_check_their_parameters(
    edge_client: httpx.AsyncClient,
) -> None:
    tracked = await edge_client.post(
        "/api/tasks", json={"source": "fotor", "task_id": "t" * 256}, headers=ADMIN_HEADERS
    )
    assert tracked.status_code == 200, tracked.text
    assert tracked.json()["state"] == "tracked"
    refused = await edge_client.post(
        "/api/tasks?force=1", json={"source": "fotor", "task_id": "u"}, headers=ADMIN_HEADERS
    )
    assert_error(refused, 422, "invalid_payload", "force")
    for query, field in (("state=bogus", "state"), ("limit=0", "limit"), ("limit=x", "limit")):
        assert_error(
            await edge_client.get(f"/api/tasks?{query}", headers=ADMIN_HEADERS),
            422,
            "invalid_payload",
            field,
        )
    listed = await edge_client.get("/api/tasks?state=tracked&limit=1", headers=ADMIN_HEADERS)
    assert [t["task_id"] for t in listed.json()["items"]] == ["t" * 256]


def signed(key: str, *, age: float = 0) -> str:
    """A session cookie signed with ``key`` as photohook signs them, ``age`` seconds old."""

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age)

    signer = Then(key, salt="photohook.dashboard-session", digest_method=hashlib.sha256)
    return signer.sign("admin").decode()


async def test_a_forged_or_expired_session_cookie_is_refused(
    edge_client: httpx.AsyncClient,
) -> None:
    login = await edge_client.post("/ui/login", data={"token": EDGE_ADMIN})
    assert login.status_code == 303
    issued = login.cookies[SESSION_COOKIE]
    edge_client.cookies.clear()
    nearly_expired = signed(EDGE_ADMIN, age=SESSION_SECONDS - 60)
    for accepted in (issued, nearly_expired):
        cookies = {"cookie": f"{SESSION_COOKIE}={accepted}"}
        assert (await edge_client.get("/ui/events", headers=cookies)).status_code == 200
        assert (await edge_client.get("/api/events", headers=cookies)).status_code == 200
    value, _, signature = issued.rpartition(".")
    refused = {
        "expired": signed(EDGE_ADMIN, age=SESSION_SECONDS + 60),
        "signed with another key": signed("not-the-admin-token"),
        "tampered": f"{value[:-1]}{'A' if value[-1] != 'A' else 'B'}.{signature}",
        "unsigned": "admin",
    }
    for why, cookie in refused.items():
        cookies = {"cookie": f"{SESSION_COOKIE}={cookie}"}
        page = await edge_client.get("/ui/events", headers=cookies)
        assert (page.status_code, page.headers.get("location")) == (
            303,
            "/ui/login?next=/ui/events",
        ), why
        assert_error(await edge_client.get("/api/events", headers=cookies), 401, "unauthorized")
