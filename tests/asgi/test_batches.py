"""``/api/batches`` in process, on both engines: declaring, extending, closing, listing with its
cursor, reading one; every bad input answered with the JSON error shape, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.helpers import asgi_client, fixture

from .test_admin import ADMIN, make_app, send
from .test_ingest import assert_error


@pytest.fixture
async def client(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(make_app(tmp_path, database_url=database_url)) as c:
        c.headers["authorization"] = f"Bearer {ADMIN}"
        yield c


def tasks(*ids: str) -> list[dict[str, str]]:
    return [{"source": "fotor", "task_id": task_id} for task_id in ids]


async def test_a_declared_batch_completes_with_its_tasks(client: httpx.AsyncClient) -> None:
    done = fixture("fotor/upscale-completed")
    await send(client, taskId="a")
    created = await client.post("/api/batches", json={"id": "b1", "tasks": tasks("a", "b")})
    assert created.status_code == 200, created.text
    body = created.json()
    assert (body["state"], body["size"], body["closed"], body["completed"]) == (
        "open",
        2,
        True,
        1,
    )
    assert (body["outstanding"], body["event_id"]) == (1, None)
    await send(client, done | {"taskId": "b", "status": 2})
    shown = (await client.get("/api/batches/b1")).json()
    assert (shown["state"], shown["completed"], shown["failed"]) == ("completed", 1, 1)
    assert [(t["task_id"], t["status"]) for t in shown["tasks"]] == [
        ("a", "completed"),
        ("b", "failed"),
    ]
    events = (await client.get("/api/events", params={"type": "batch.completed"})).json()
    [event] = events["items"]
    assert (event["id"], event["kind"], event["via"]) == (shown["event_id"], "batch", "batch")
    assert event["payload"]["counts"] == {"completed": 1, "failed": 1, "total": 2}


async def test_an_open_batch_takes_more_tasks_then_a_close(client: httpx.AsyncClient) -> None:
    first = {"id": "grow", "tasks": tasks("x1"), "closed": False, "deadline": "2h"}
    assert (await client.post("/api/batches", json=first)).json()["size"] is None
    added = await client.post("/api/batches", json={"id": "grow", "tasks": tasks("x2")})
    assert added.json()["total"] == 2
    await send(client, taskId="x1")
    await send(client, taskId="x2")
    closed = await client.post("/api/batches/grow/close")
    assert closed.status_code == 200
    assert (closed.json()["state"], closed.json()["size"]) == ("completed", 2)
    assert closed.json()["deadline"] is not None


async def test_batches_are_listed_newest_first_by_state_with_a_cursor(
    client: httpx.AsyncClient,
) -> None:
    for n in range(3):
        await client.post("/api/batches", json={"id": f"list-{n}", "expected": 5})
    await send(client, taskId="only")
    await client.post("/api/batches", json={"id": "done", "tasks": tasks("only")})
    page = (await client.get("/api/batches", params={"limit": 2})).json()
    assert [b["id"] for b in page["items"]] == ["done", "list-2"]
    rest = (await client.get("/api/batches", params={"cursor": page["next_cursor"]})).json()
    assert [b["id"] for b in rest["items"]] == ["list-1", "list-0"]
    assert rest["next_cursor"] is None
    completed = (await client.get("/api/batches", params={"state": "completed"})).json()
    assert [b["id"] for b in completed["items"]] == ["done"]


async def test_a_batch_id_with_slashes_is_the_rest_of_the_path(client: httpx.AsyncClient) -> None:
    for batch_id in ("shop/order-7", "shop/order-7/close", "a b?c#d%e/f"):
        declared = await client.post("/api/batches", json={"id": batch_id, "expected": 2})
        assert declared.json()["id"] == batch_id, declared.text
    for path in ("shop/order-7", "shop%2Forder-7"):
        assert (await client.get(f"/api/batches/{path}")).json()["id"] == "shop/order-7"
    shown = await client.get(f"/api/batches/{quote('a b?c#d%e/f')}")
    assert shown.json()["id"] == "a b?c#d%e/f", shown.text
    # GET reads the whole rest of the path; POST .../close closes the batch named before it.
    assert (await client.get("/api/batches/shop/order-7/close")).json()["closed"] is False
    closed = (await client.post("/api/batches/shop/order-7/close")).json()
    assert (closed["id"], closed["closed"]) == ("shop/order-7", True)
    assert (await client.get("/api/batches/shop/order-7/close")).json()["closed"] is False
    closed = (await client.post("/api/batches/shop/order-7/close/close")).json()
    assert (closed["id"], closed["closed"]) == ("shop/order-7/close", True)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b"[]", 422, "invalid_payload", ""),
        ({"tasks": []}, 422, "invalid_payload", "id"),
        ({"id": ""}, 422, "invalid_payload", "id"),
        ({"id": "x" * 300}, 422, "invalid_payload", "id"),
        ({"id": "b", "expected": 0}, 422, "invalid_payload", "expected"),
        ({"id": "b", "expected": "ten"}, 422, "invalid_payload", "expected"),
        ({"id": "b", "deadline": "soon"}, 422, "invalid_payload", "deadline"),
        ({"id": "b", "deadline": "2026-12-01T10:00:00"}, 422, "invalid_payload", "deadline"),
        ({"id": "b", "deadline": True}, 422, "invalid_payload", "deadline"),
        ({"id": "b", "deadline": "1000d"}, 422, "invalid_payload", "deadline"),
        ({"id": "b", "deadline": 1e300}, 422, "invalid_payload", "deadline"),
        ({"id": "b", "deadline": "2020-01-01T00:00:00Z"}, 422, "invalid_payload", "deadline"),
        ({"id": "b", "expected": 10**7}, 422, "invalid_payload", "expected"),
        ({"id": "b\u0000"}, 422, "invalid_payload", "id"),
        ({"id": "b", "tasks": "t1"}, 422, "invalid_payload", "tasks"),
        ({"id": "b", "tasks": [{"source": "fotor"}]}, 422, "invalid_payload", "task_id"),
        (
            {"id": "b", "tasks": [{"source": "nope", "task_id": "t"}]},
            422,
            "invalid_payload",
            "tasks[0].source",
        ),
        ({"id": "b", "colour": "red"}, 422, "invalid_payload", "colour"),
    ],
)
async def test_bad_declarations_get_the_json_error_shape(
    client: httpx.AsyncClient, body: Any, status: int, code: str, field: str | None
) -> None:
    if isinstance(body, bytes):
        answer = await client.post(
            "/api/batches", content=body, headers={"content-type": "application/json"}
        )
    else:
        answer = await client.post("/api/batches", json=body)
    assert_error(answer, status, code, field)


async def test_conflicts_and_unknown_batches(client: httpx.AsyncClient) -> None:
    await client.post("/api/batches", json={"id": "fixed", "tasks": tasks("a")})
    assert_error(
        await client.post("/api/batches", json={"id": "fixed", "tasks": tasks("b")}),
        409,
        "conflict",
    )
    await client.post("/api/batches", json={"id": "sized", "expected": 2})
    assert_error(
        await client.post("/api/batches", json={"id": "sized", "expected": 3}), 409, "conflict"
    )
    assert_error(await client.get("/api/batches/nope"), 404, "not_found")
    assert_error(await client.post("/api/batches/nope/close"), 404, "not_found")
    for method, path in (("GET", "/api/batches/shop/nope"), ("POST", "/api/batches/a/b/close")):
        unknown = assert_error(await client.request(method, path), 404, "not_found")
        assert unknown["message"] == "no batch with that id"
    assert_error(
        await client.get("/api/batches", params={"state": "done"}), 422, "invalid_payload", "state"
    )
    assert_error(
        await client.get("/api/batches", params={"limit": 0}), 422, "invalid_payload", "limit"
    )


async def test_the_batches_api_needs_the_admin_token(tmp_path: Path) -> None:
    async with asgi_client(make_app(tmp_path)) as anonymous:
        assert_error(await anonymous.get("/api/batches"), 401, "unauthorized")
        assert_error(await anonymous.post("/api/batches", json={"id": "b"}), 401, "unauthorized")
