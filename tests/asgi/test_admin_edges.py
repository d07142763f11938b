"""The operators' surface at its edges: an unexpected error anywhere answers 503 in the JSON error
shape; ``/api/tasks`` refuses bad input field by field; a forged or expired dashboard session
is a stranger's."""

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
from receiver.web.admin.access import SESSION_COOKIE, SESSION_SECONDS

from .test_ingest import assert_error

ADMIN = "admin-token-for-edge-tests"
CONFIG = """
[sources.fotor]
api_key = "fotor-api-key-for-edge-tests"
api_base_url = "http://127.0.0.1:9"
[sources.crop]
kind = "cropphoto"
secrets = ["s"]
"""


@pytest.fixture
def app(tmp_path: Path) -> Starlette:
    config = tmp_path / "photohook.toml"
    config.write_text(CONFIG)
    settings = Settings.load(
        config_file=config,
        database_url=f"sqlite:///{tmp_path / 'photohook.db'}",
        environ={"PHOTOHOOK_SECRET_KEYS": "k", "PHOTOHOOK_ADMIN_TOKEN": ADMIN},
    )
    return create_app(settings, worker=False)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the answers the server sends, even to exceptions it raises again."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(
            app=app, client=("203.0.113.9", 40000), raise_app_exceptions=False
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://photohook.test") as c:
            yield c


ADMIN_HEADERS = {"authorization": f"Bearer {ADMIN}"}


async def test_an_unexpected_error_on_any_route_answers_503_in_the_error_shape(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug of ours, with /private/detail")

    monkeypatch.setattr(app.state.store, "list_events", broken)
    monkeypatch.setattr(app.state.store, "list_tasks", broken)
    for path in ("/api/events", "/api/tasks"):
        response = await client.get(path, headers=ADMIN_HEADERS)
        assert_error(response, 503, "unavailable")
        assert "a bug of ours" not in response.text
        assert "/private/detail" not in response.text
    monkeypatch.undo()
    assert (await client.get("/api/events", headers=ADMIN_HEADERS)).status_code == 200


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
    client: httpx.AsyncClient, body: bytes, status: int, code: str, field: str | None
) -> None:
    headers = ADMIN_HEADERS | {"content-type": "application/json"}
    response = await client.post("/api/tasks", content=body, headers=headers)
    assert_error(response, status, code, field)
    listed = await client.get("/api/tasks", headers=ADMIN_HEADERS)
    assert listed.json() == {"items": []}  # nothing tracked


async def test_tracking_and_listing_tasks_check_their_parameters(client: httpx.AsyncClient) -> None:
    tracked = await client.post(
        "/api/tasks", json={"source": "fotor", "task_id": "t" * 256}, headers=ADMIN_HEADERS
    )
    assert tracked.status_code == 200, tracked.text
    assert tracked.json()["state"] == "tracked"
    refused = await client.post(
        "/api/tasks?force=1", json={"source": "fotor", "task_id": "u"}, headers=ADMIN_HEADERS
    )
    assert_error(refused, 422, "invalid_payload", "force")
    for query, field in (("state=bogus", "state"), ("limit=0", "limit"), ("limit=x", "limit")):
        assert_error(
            await client.get(f"/api/tasks?{query}", headers=ADMIN_HEADERS),
            422,
            "invalid_payload",
            field,
        )
    listed = await client.get("/api/tasks?state=tracked&limit=1", headers=ADMIN_HEADERS)
    assert [t["task_id"] for t in listed.json()["items"]] == ["t" * 256]


def signed(key: str, *, age: float = 0) -> str:
    """A session cookie signed with ``key`` as photohook signs them, ``age`` seconds old."""

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age)

    signer = Then(key, salt="photohook.dashboard-session", digest_method=hashlib.sha256)
    return signer.sign("admin").decode()


async def test_a_forged_or_expired_session_cookie_is_refused(client: httpx.AsyncClient) -> None:
    login = await client.post("/ui/login", data={"token": ADMIN})
    assert login.status_code == 303
    issued = login.cookies[SESSION_COOKIE]
    client.cookies.clear()
    nearly_expired = signed(ADMIN, age=SESSION_SECONDS - 60)
    for accepted in (issued, nearly_expired):
        cookies = {"cookie": f"{SESSION_COOKIE}={accepted}"}
        assert (await client.get("/ui/events", headers=cookies)).status_code == 200
        assert (await client.get("/api/events", headers=cookies)).status_code == 200
    value, _, signature = issued.rpartition(".")
    refused = {
        "expired": signed(ADMIN, age=SESSION_SECONDS + 60),
        "signed with another key": signed("not-the-admin-token"),
        "tampered": f"{value[:-1]}{'A' if value[-1] != 'A' else 'B'}.{signature}",
        "unsigned": "admin",
    }
    for why, cookie in refused.items():
        cookies = {"cookie": f"{SESSION_COOKIE}={cookie}"}
        page = await client.get("/ui/events", headers=cookies)
        assert (page.status_code, page.headers.get("location")) == (
            303,
            "/ui/login?next=/ui/events",
        ), why
        assert_error(await client.get("/api/events", headers=cookies), 401, "unauthorized")
