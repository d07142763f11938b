"""Handler destinations and the built-in handlers, photohook under uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from receiver.delivery.senders import HTTPSender
from receiver.destinations import HTTPDestination
from receiver.events import Event
from tests.plugins import hooks

from .servers import Sink, eventually

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
