"""Every ingest endpoint and every error path, in process, on a real SQLite file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from receiver import Settings, create_app
from receiver.store import EventQuery
from tests.helpers import asgi_client, fixture, fixture_bytes
from tests.postgres import POSTGRES_URL

from .conftest import CONFIG, CROP_SECRET, KEY, TOKENS, hook

Post = Callable[..., Any]


def assert_error(response: httpx.Response, status: int, code: str, field: str | None = None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["ok"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"].get("field") == field
    return body["error"]


async def events(app: Starlette, **filters: Any) -> list[dict[str, Any]]:
    store = app.state.store
    return [e.to_dict() for e in await store.list_events(EventQuery(**filters))]


@pytest.mark.parametrize(
    "name",
    [
        "fotor/upscale-completed",
        "fotor/upscale-in-progress",
        "fotor/bg-remove-failed",
        "fotor/avatar-completed",
    ],
)
async def test_fotor_fixtures_are_accepted_and_stored(
    app: Starlette, client: httpx.AsyncClient, name: str
) -> None:
    response = await client.post(
        hook("fotor"), content=fixture_bytes(name), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True and body["duplicate"] is False
    [event_id] = body["event_ids"]
    [event] = await events(app)
    assert event["id"] == event_id and event_id.startswith("evt_")
    assert event["source"] == "fotor" and event["kind"] == "fotor"
    assert event["payload"] == fixture(name)
    assert event["received_at"].endswith("Z")


async def test_normalized_event_contract(app: Starlette, post: Post) -> None:
    await post("fotor", fixture("fotor/avatar-completed"))
    [event] = await events(app)
    assert set(event) == {
        "id",
        "source",
        "kind",
        "type",
        "task_id",
        "task_type",
        "status",
        "business_id",
        "labels",
        "result_urls",
        "flagged",
        "received_at",
        "via",
        "payload",
    }
    assert event["type"] == "fotor.task.completed"
    assert event["task_type"] == "avatar"
    assert event["flagged"] is True
    assert len(event["result_urls"]) == 2
    assert event["via"] == "callback"


@pytest.mark.parametrize(
    "name",
    [
        "cropphoto/banner-job-completed",
        "cropphoto/banner-job-failed",
        "cropphoto/banner-status-shape",
    ],
)
async def test_cropphoto_fixtures_with_the_shared_secret(
    app: Starlette, client: httpx.AsyncClient, name: str
) -> None:
    response = await client.post(
        "/hooks/cropphoto", json=fixture(name), headers={"X-WEBHOOK-SECRET": CROP_SECRET}
    )
    assert response.status_code == 200, response.text
    [event] = await events(app)
    assert event["kind"] == "cropphoto" and event["task_type"] == "banner"


async def test_rotated_secret_and_token_only_source(client: httpx.AsyncClient, post: Post) -> None:
    response = await client.post(
        "/hooks/cropphoto",
        json=fixture("cropphoto/banner-job-completed"),
        headers={"X-WEBHOOK-SECRET": "older-secret"},
    )
    assert response.status_code == 200
    assert (await post("crop-token", fixture("cropphoto/banner-job-failed"))).status_code == 200


async def test_status_shape_with_several_jobs_gives_several_events(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    body = {
        "jobs": [
            {"job_id": "bj_1", "status": "completed", "job_labels": ["car-1"]},
            {"job_id": "bj_2", "status": "failed"},
        ],
        "results": [],
        "error_message": "",
    }
    headers = {"X-WEBHOOK-SECRET": CROP_SECRET}
    response = await client.post("/hooks/cropphoto", json=body, headers=headers)
    assert len(response.json()["event_ids"]) == 2
    assert {e["task_id"] for e in await events(app)} == {"bj_1", "bj_2"}


async def test_resends_are_duplicates(app: Starlette, post: Post) -> None:
    body = fixture("fotor/upscale-completed")
    first = (await post("fotor", body)).json()
    for _ in range(3):
        again = (await post("fotor", body)).json()
        assert again == {"ok": True, "event_ids": first["event_ids"], "duplicate": True}
    changed = (
        await post("fotor", body | {"resultUrl": "https://cdn.example.com/other.png"})
    ).json()
    assert changed["duplicate"] is True and changed["event_ids"] == first["event_ids"]
    later_status = (await post("fotor", body | {"status": 2})).json()
    assert later_status["duplicate"] is False
    assert len(await events(app)) == 2


async def test_concurrent_callbacks_are_committed_together(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    body = fixture("fotor/upscale-completed")
    responses = await asyncio.gather(
        *(client.post(hook("fotor"), json=body | {"taskId": f"task-{i}"}) for i in range(200))
    )
    assert all(r.status_code == 200 for r in responses)
    assert len(await events(app, limit=500)) == 200
    store = app.state.store
    assert store._commits.commits < 100  # group commit: far fewer commits than requests


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/hooks/fotor", "no token"),
        ("/hooks/fotor/not-a-token", "not a token of source 'fotor'"),
        (hook("cropphoto"), "not a token of source 'fotor'"),
        (hook("fotor") + "x", "not a token"),
        (hook("fotor")[:-1], "not a token"),
    ],
)
async def test_bad_tokens_are_401(
    app: Starlette, client: httpx.AsyncClient, path: str, message: str
) -> None:
    path = path.replace("/hooks/cropphoto/", "/hooks/fotor/")
    response = await client.post(path, json=fixture("fotor/upscale-completed"))
    error = assert_error(response, 401, "unauthorized")
    assert message in error["message"]
    assert TOKENS.token("fotor") not in response.text
    assert await events(app) == []


async def test_token_of_another_source_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/hooks/fotor/{TOKENS.token('crop-token')}", json=fixture("fotor/upscale-completed")
    )
    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("secret", [None, "", "wrong", CROP_SECRET[:-1], CROP_SECRET + "x"])
async def test_bad_secrets_are_401_and_never_echoed(
    app: Starlette, client: httpx.AsyncClient, secret: str | None
) -> None:
    headers = {} if secret is None else {"X-WEBHOOK-SECRET": secret}
    response = await client.post(
        "/hooks/cropphoto", json=fixture("cropphoto/banner-job-completed"), headers=headers
    )
    error = assert_error(response, 401, "unauthorized")
    assert "secret check failed" in error["message"]
    assert CROP_SECRET not in response.text
    assert await events(app) == []


@pytest.mark.parametrize(
    ("peer", "forwarded", "status"),
    [
        ("54.212.95.175", None, 200),
        ("44.236.127.35", None, 200),
        ("203.0.113.5", None, 403),
        ("203.0.113.5", "54.212.95.175", 403),  # forged by an untrusted peer
        ("10.0.0.7", "54.212.95.175", 200),  # through a trusted proxy
        ("10.0.0.7", "54.212.95.175, 203.0.113.5", 403),  # the proxy saw 203.0.113.5
        ("10.0.0.7", None, 403),
    ],
)
async def test_ip_allowlist(app: Starlette, peer: str, forwarded: str | None, status: int) -> None:
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    async with asgi_client(app, client=(peer, 5000)) as client:
        response = await client.post(
            hook("fotor-ip"), json=fixture("fotor/upscale-completed"), headers=headers
        )
    assert response.status_code == status, response.text
    if status == 403:
        assert_error(response, 403, "forbidden")
        assert "ip check failed" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"content-type": "text/plain"}, "must be JSON"),
        ({}, "must be JSON"),
        ({"content-type": "application/x-www-form-urlencoded"}, "must be JSON"),
        ({"content-type": "application/json", "content-encoding": "gzip"}, "compressed"),
    ],
)
async def test_non_json_media_is_415(
    client: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    response = await client.post(hook("fotor"), content=b"{}", headers=headers)
    assert message in assert_error(response, 415, "unsupported_media_type")["message"]


async def test_json_media_type_variants_are_accepted(client: httpx.AsyncClient) -> None:
    for content_type in (
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.x+json",
    ):
        body = fixture("fotor/upscale-completed") | {"taskId": content_type}
        response = await client.post(
            hook("fotor"), content=json.dumps(body), headers={"content-type": content_type}
        )
        assert response.status_code == 200, content_type


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"not json",
        b'{"a": 1,}',
        b"\xff\xfe{}",
        b'{"taskId": "\xc3"}',
        b"[" * 2000,
        b"NaN",
    ],
)
async def test_invalid_json_is_400(
    app: Starlette, client: httpx.AsyncClient, content: bytes
) -> None:
    response = await client.post(
        hook("fotor"), content=content, headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_json")
    assert await events(app) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], ""),
        ({"status": 1, "type": "upscale"}, "taskId"),
        ({"taskId": "t", "status": 9, "type": "upscale"}, "status"),
        ({"taskId": "t", "status": 1}, "type"),
        (
            {"taskId": "t", "status": 1, "type": "x", "avatarResult": [{"images": [1]}]},
            "avatarResult[0].images[0]",
        ),
    ],
)
async def test_schema_violations_are_422_naming_the_field(
    app: Starlette, post: Post, body: Any, field: str
) -> None:
    assert_error(await post("fotor", body), 422, "invalid_payload", field)
    assert await events(app) == []


async def test_body_over_the_limit_is_413_with_content_length(client: httpx.AsyncClient) -> None:
    body = fixture("fotor/upscale-completed") | {"padding": "x" * 5000}
    response = await client.post(hook("fotor"), json=body)
    assert_error(response, 413, "body_too_large")


async def test_body_over_the_limit_is_413_when_chunked(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"taskId": "t", "status": 1, "type": "x", "padding": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    response = await client.post(
        hook("fotor"), content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "body_too_large")


@pytest.mark.parametrize(("over", "status"), [(0, 200), (1, 413)])
async def test_a_chunked_body_is_refused_from_one_byte_over_the_limit(
    client: httpx.AsyncClient, over: int, status: int
) -> None:
    head = json.dumps(fixture("fotor/upscale-completed"))[:-1].encode() + b', "padding": "'
    tail = b'"}'
    padding = b"x" * (4096 + over - len(head) - len(tail))

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (head, padding, tail):
            yield chunk

    response = await client.post(
        hook("fotor"), content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == status, response.text


async def test_bad_content_length_is_400(client: httpx.AsyncClient) -> None:
    request = client.build_request("POST", hook("fotor"), content=b"{}")
    request.headers["content-type"] = "application/json"
    request.headers["content-length"] = "-5"
    assert_error(await client.send(request), 400, "bad_request")


async def test_unknown_source_is_404_without_echoing_the_path(client: httpx.AsyncClient) -> None:
    response = await client.post("/hooks/stripe/sometoken", json={})
    error = assert_error(response, 404, "unknown_source")
    assert "sometoken" not in error["message"]
    assert_error(await client.post("/nowhere", json={}), 404, "not_found")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_wrong_method_is_405(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, hook("fotor"))
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize("path", ["/hooks/fotor/token/more", "/hooks/fotor/", "/hooks//token"])
async def test_other_paths_under_hooks_are_404(client: httpx.AsyncClient, path: str) -> None:
    assert_error(await client.post(path, json={}), 404, "not_found")


async def test_every_answer_has_a_request_id_and_an_access_line(
    client: httpx.AsyncClient, post: Post, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="photohook.access")
    accepted = await post("fotor", fixture("fotor/upscale-completed"))
    refused = await client.post("/hooks/fotor/not-a-token", json={})
    for response in (accepted, refused):  # not chunked: the length is known
        assert response.headers["content-length"] == str(len(response.content))
    ids = [accepted.headers["x-request-id"], refused.headers["x-request-id"]]
    assert all(len(request_id) == 16 for request_id in ids) and ids[0] != ids[1]
    lines = [r.getMessage() for r in caplog.records if r.name == "photohook.access"]
    assert lines[0].startswith("POST /hooks/fotor/<token> 200 accepted ")
    assert lines[1].startswith("POST /hooks/fotor/<token> 401 unauthorized ")
    assert TOKENS.token("fotor") not in caplog.text and "not-a-token" not in caplog.text


async def test_without_the_access_log_only_refusals_are_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="photohook.access")
    async with asgi_client(create_app(dataclasses.replace(settings, access_log=False))) as client:
        accepted = await client.post(hook("fotor"), json=fixture("fotor/upscale-completed"))
        refused = await client.post("/hooks/fotor/not-a-token", json={})
    assert (accepted.status_code, refused.status_code) == (200, 401)
    lines = [r.getMessage() for r in caplog.records if r.name == "photohook.access"]
    assert len(lines) == 1 and lines[0].startswith("POST /hooks/fotor/<token> 401 unauthorized ")


async def test_a_client_gone_before_its_body_is_refused_and_nothing_is_stored(
    app: Starlette,
) -> None:
    body = json.dumps(fixture("fotor/upscale-completed")).encode()
    messages = iter(
        [
            {"type": "http.request", "body": body[:10], "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async with app.router.lifespan_context(app):
        status, answer, _ = await _call(app, receive)
        assert status == 400
        assert answer["error"]["code"] == "client_disconnected"
        assert await events(app) == []


async def test_a_body_slower_than_body_timeout_gets_408(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, body_timeout=0.3))

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the body never comes
        raise AssertionError("unreachable")

    async with app.router.lifespan_context(app):
        status, answer, _ = await asyncio.wait_for(_call(app, receive), 5)
        assert status == 408
        assert answer["error"]["code"] == "request_timeout"
        assert await events(app) == []


async def test_a_commit_slower_than_its_deadline_gets_503_to_be_sent_again(
    app: Starlette, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("receiver.web.ingest.COMMIT_TIMEOUT", 0.3)
    body = json.dumps(fixture("fotor/upscale-completed")).encode()
    messages = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def stuck(receipt: object) -> None:
        await asyncio.Event().wait()

    async with app.router.lifespan_context(app):
        monkeypatch.setattr(app.state.store, "store", stuck)
        status, answer, headers = await asyncio.wait_for(_call(app, receive), 5)
    assert status == 503
    assert answer["error"]["code"] == "unavailable"
    assert headers[b"retry-after"] == b"5"
    assert "took over 0.3s" in caplog.text


async def _call(app: Starlette, receive: Any) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    """A callback to ``app`` as uvicorn would make it: the status, JSON and headers answered."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path = hook("fotor")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"]), dict(sent[0]["headers"])


async def test_our_own_fault_is_503_with_the_traceback_logged(
    app: Starlette, post: Post, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr("receiver.web.callbacks.new_events", broken)
    response = await post("fotor", fixture("fotor/upscale-completed"))
    assert_error(response, 503, "unavailable")
    assert "a bug of ours" not in response.text
    failure = next(r for r in caplog.records if r.name == "photohook.ingest")
    assert failure.exc_info is not None and "a bug of ours" in str(failure.exc_info[1])
    monkeypatch.undo()
    assert (await post("fotor", fixture("fotor/upscale-completed"))).status_code == 200


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"ok": True}
    assert (await client.get("/readyz")).json() == {"ok": True}


async def test_database_failure_is_503_and_ingest_recovers(
    app: Starlette, client: httpx.AsyncClient, post: Post
) -> None:
    store = app.state.store
    await store._writer.execute("PRAGMA query_only = 1")  # SQLite now refuses every write
    response = await post("fotor", fixture("fotor/upscale-completed"))
    assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == "5"
    assert_error(await client.get("/readyz"), 503, "unavailable")
    await store._writer.execute("PRAGMA query_only = 0")
    assert (await post("fotor", fixture("fotor/upscale-completed"))).json()["duplicate"] is False
    assert (await client.get("/readyz")).status_code == 200


async def test_stored_headers_are_redacted(app: Starlette, client: httpx.AsyncClient) -> None:
    await client.post(
        "/hooks/cropphoto",
        json=fixture("cropphoto/banner-job-completed"),
        headers={"X-WEBHOOK-SECRET": CROP_SECRET, "Authorization": "Bearer abc123"},
    )
    store = app.state.store
    async with store._read() as tx:
        [(headers, peer, client)] = await tx.fetch("SELECT headers, peer, client FROM receipts")
    assert CROP_SECRET not in headers and "abc123" not in headers
    assert ["x-webhook-secret", "[redacted]"] in json.loads(headers)
    assert peer == client == "54.212.95.175"


async def test_dropped_postgres_connections_are_503_or_200_and_ingest_recovers(
    tmp_path: Path, postgres_url: str
) -> None:
    """Every connection of the app dropped by the server (a restart, a failover): requests in
    that moment get 503 or are stored, never a 500; then everything is stored again."""
    name = f"photohook_fault_{tmp_path.name[-8:]}"
    (tmp_path / "photohook.toml").write_text(CONFIG)
    settings = Settings.load(
        config_file=tmp_path / "photohook.toml",
        database_url=f"{postgres_url}&application_name={name}",
        environ={"PHOTOHOOK_SECRET_KEYS": KEY, "CROP_SECRET": CROP_SECRET},
    )
    app = create_app(settings, worker=False)
    async with asgi_client(app) as client:

        async def post(index: int) -> int:
            body = fixture("fotor/upscale-completed") | {"taskId": f"t{index}"}
            return (await client.post(hook("fotor"), json=body)).status_code

        assert await post(0) == 200
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            dropped = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                name,
            )
        finally:
            await admin.close()
        assert dropped >= 1
        during = await asyncio.gather(*(post(i) for i in range(1, 21)))
        assert set(during) <= {200, 503}
        after = await asyncio.gather(*(post(i) for i in range(1, 21)))
        assert after == [200] * 20
        assert len(await app.state.store.list_events(EventQuery(limit=100))) == 21
