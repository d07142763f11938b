"""Handler destinations and the built-in handlers, photohook under uvicorn."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.delivery.senders import HTTPSender
from receiver.destinations import HTTPDestination
from receiver.events import Event
from tests.helpers import fixture
from tests.plugins import hooks

from .servers import Sink, eventually, running

Start = Callable[..., Any]


def handler(name: str, target: str, extra: str = "") -> str:
    return f'[destinations.{name}]\nhandler = "{target}"\n{extra}\n'


async def test_sync_and_async_handlers_are_called_once_each(photohook: Start) -> None:
    app = await photohook(
        handler("sync", "tests.plugins.hooks:record")
        + handler("async", "tests.plugins.hooks:record_async")
        + '[[routes]]\nto = ["sync", "async"]\n'
    )
    [event_id] = await app.send()
    await eventually(lambda: app.all_in("delivered", 2))
    assert hooks.CALLS.count(event_id) == 1
    assert hooks.ASYNC_CALLS.count(event_id) == 1


async def test_a_handler_of_two_parameters_gets_the_delivery_context(photohook: Start) -> None:
    app = await photohook(
        handler("ctx", "tests.plugins.hooks:record_context_then_retry", 'retry_schedule = ["10ms"]')
        + handler("plain", "tests.plugins.hooks:record")
        + '[[routes]]\nto = ["ctx", "plain"]\n'
    )
    [event_id] = await app.send(taskId="context-task")
    await eventually(lambda: app.all_in("delivered", 2))
    [delivery] = [d for d in await app.deliveries() if d.destination == "ctx"]
    contexts = [context for seen, context in hooks.CONTEXTS if seen == event_id]
    assert [c.attempt for c in contexts] == [1, 2]
    assert {(c.delivery_id, c.destination, c.message_id) for c in contexts} == {
        (delivery.id, "ctx", event_id)
    }
    assert hooks.CALLS.count(event_id) == 1


async def test_handlers_passed_as_callables(photohook: Start) -> None:
    app = await photohook('[[routes]]\nto = ["mine"]\n', handlers={"mine": hooks.record})
    [event_id] = await app.send(taskId="callable-task")
    await eventually(lambda: app.all_in("delivered", 1))
    assert event_id in hooks.CALLS


async def test_handler_timeout_exception_and_retry(photohook: Start) -> None:
    app = await photohook(
        handler("slow", "tests.plugins.hooks:too_slow", 'timeout = "200ms"\nretry_schedule = []')
        + handler("broken", "tests.plugins.hooks:broken", "retry_schedule = []")
        + handler("retry", "tests.plugins.hooks:retry_once", 'retry_schedule = ["10ms"]')
        + '[[routes]]\nto = ["slow", "broken", "retry"]\n'
    )
    [event_id] = await app.send(taskId="handler-task")
    await eventually(lambda: app.settled(3))
    found = {d.destination: d for d in await app.deliveries()}
    assert found["slow"].state == "dead"
    assert found["slow"].last_error == "timed out after 0.2s"
    assert found["broken"].state == "dead"
    assert found["broken"].last_error == "RuntimeError: the handler is broken"
    assert found["retry"].state == "delivered"
    assert found["retry"].attempts == 2
    assert hooks.ATTEMPTS[event_id] == 2


async def test_print_event_logs_one_line(
    photohook: Start, caplog: pytest.LogCaptureFixture
) -> None:
    app = await photohook(handler("log", "handlers.log:print_event") + '[[routes]]\nto = ["log"]\n')
    with caplog.at_level("INFO", logger="photohook.handlers.log"):
        [event_id] = await app.send(taskId="logged-task")
        await eventually(lambda: app.all_in("delivered", 1))
    [line] = [r.getMessage() for r in caplog.records if r.name == "photohook.handlers.log"]
    logged = orjson.loads(line)
    assert logged["event_id"] == event_id
    assert logged["task_id"] == "logged-task"
    assert "payload" not in logged


FILES = {
    "/a.png": b"\x89PNG" + b"a" * 5000,
    "/b.jpg": b"\xff\xd8" + b"b" * 300,
    "/big.bin": b"x" * 70_000,
}


def file_server() -> Starlette:
    async def serve_file(request: Request) -> Response:
        path = request.url.path
        if path == "/moved.png":
            return Response(status_code=302, headers={"location": "/a.png"})
        if path not in FILES:
            return Response(status_code=404)
        media_type = "image/png" if path.endswith(".png") else "application/octet-stream"
        return Response(FILES[path], media_type=media_type)

    return Starlette(routes=[Route("/{path:path}", serve_file)])


async def test_archive_saves_every_result_with_its_checksum(
    photohook: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: Any
) -> None:
    archive = tmp_path / "archive"
    monkeypatch.setenv("PHOTOHOOK_ARCHIVE_DIR", str(archive))
    monkeypatch.setenv("PHOTOHOOK_ARCHIVE_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("PHOTOHOOK_ARCHIVE_MAX_BYTES", "65536")
    files = stack.enter_context(running(file_server(), lifespan="off"))
    app = await photohook(
        handler("archive", "handlers.archive:save_result", "retry_schedule = []")
        + '[[routes]]\nto = ["archive"]\n'
    )
    body = fixture("fotor/avatar-completed")
    body["avatarResult"][0]["images"][0]["url"] = f"{files}/a.png"
    body["avatarResult"][0]["images"][1]["url"] = f"{files}/moved.png?sig=1"
    body["resultUrl"] = f"{files}/b.jpg"
    await app.send(body)
    await app.send(fixture("fotor/upscale-completed") | {"resultUrl": f"{files}/big.bin"})
    await eventually(lambda: app.settled(2))
    folder = archive / "fotor" / body["taskId"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "a.png",
        "a.png.json",
        "b.jpg",
        "b.jpg.json",
        "moved.png",
        "moved.png.json",
    ]
    assert (folder / "a.png").read_bytes() == FILES["/a.png"]
    record = orjson.loads((folder / "a.png.json").read_bytes())
    assert record["size"] == len(FILES["/a.png"])
    assert record["sha256"] == hashlib.sha256(FILES["/a.png"]).hexdigest()
    assert record["content_type"] == "image/png"
    assert (folder / "moved.png").read_bytes() == FILES["/a.png"]  # followed, and checked
    states = {d.event_id: d for d in await app.deliveries()}
    big = [d for d in states.values() if d.state == "dead"]
    assert len(big) == 1
    assert "over the limit" in (big[0].last_error or "")
    leftovers = list((archive / "fotor" / fixture("fotor/upscale-completed")["taskId"]).iterdir())
    assert leftovers == []  # no partial file is left behind


async def test_archive_refuses_private_addresses_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers.archive import save_result
    from receiver.errors import DeniedDestination

    monkeypatch.setenv("PHOTOHOOK_ARCHIVE_DIR", str(tmp_path))
    event = _event(result_urls=("http://127.0.0.1:9/secret.png",))
    with pytest.raises(DeniedDestination, match="loopback"):
        save_result(event)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/missing.png", "/missing.png answered 404"),
        ("/big.bin", "/big.bin is 70000 bytes, over the limit"),
    ],
)
async def test_archive_errors_name_result_urls_without_their_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: Any, path: str, expected: str
) -> None:
    """The error becomes the delivery's last_error and log line: a presigned URL's query and any
    userinfo are credentials, so they are left out."""
    from receiver.handlers.archive import ArchiveError, save_result

    monkeypatch.setenv("PHOTOHOOK_ARCHIVE_DIR", str(tmp_path))
    monkeypatch.setenv("PHOTOHOOK_ARCHIVE_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("PHOTOHOOK_ARCHIVE_MAX_BYTES", "65536")
    files = stack.enter_context(running(file_server(), lifespan="off"))
    signed = files.replace("http://", "http://user:pa55word@") + path
    signed += "?X-Amz-Signature=sig-never-shown-5150&X-Amz-Credential=cred-never-shown#frag"
    with pytest.raises(ArchiveError) as raised:
        save_result(_event(result_urls=(signed,)))
    message = str(raised.value)
    assert f"{files}{expected}" in message
    for secret in ("sig-never-shown-5150", "cred-never-shown", "pa55word", "user", "?", "#"):
        assert secret not in message


async def test_the_resolved_address_is_checked_again_at_connect_time(
    sink_url: Callable[[Sink], str],
) -> None:
    sink = Sink()
    port = sink_url(sink).rsplit(":", 1)[1]
    # As if DNS now answered with loopback for a name that passed the configuration check.
    destination = HTTPDestination(name="app", url=f"http://localhost:{port}/hook")

    sender = HTTPSender(destination)
    result = await sender.send(_event())
    await sender.aclose()
    assert not result.attempt.ok
    assert result.attempt.error is not None
    assert result.attempt.error.startswith("refused: localhost (")
    assert result.attempt.error.endswith("is a loopback address")
    assert sink.received == []


def _event(**changes: Any) -> Event:
    from datetime import UTC, datetime

    fields: dict[str, Any] = {
        "id": "evt_x",
        "source": "fotor",
        "kind": "fotor",
        "type": "fotor.task.completed",
        "task_id": "t",
        "task_type": "upscale",
        "status": "completed",
        "business_id": None,
        "labels": (),
        "result_urls": (),
        "flagged": False,
        "received_at": datetime.now(UTC),
        "payload": {},
    }
    return Event(**(fields | changes))
