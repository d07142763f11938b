"""Broker destinations against real RabbitMQ, Redis and NATS JetStream servers: a routed event
arrives once, signed as for HTTP; a refused publish goes dead after its schedule and is retried
to success; a connection cut mid-run loses nothing; a task's events keep their order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from tests.e2e.process import run_cli
from tests.helpers import fixture, free_port

from .brokers import KINDS, Broker, RabbitMQ, Relay, open_broker, relayed, target_of
from .conftest import SECRET, Photohook
from .servers import eventually

ADMIN = "broker-tests-admin-token"
COMPLETED = fixture("fotor/upscale-completed")
IN_PROGRESS = fixture("fotor/upscale-in-progress")

every_kind = pytest.mark.parametrize("kind", list(KINDS))


@pytest.fixture
async def broker(kind: str) -> AsyncIterator[Broker]:
    opened = await open_broker(kind)
    yield opened
    await opened.close()


def config(broker: Broker, url: str | None = None, extra: str = "") -> str:
    return (
        f"[destinations.bus]\n{broker.config(url or broker.url)}"
        f'secret = "{SECRET}"\n{extra}\n'
        '[[routes]]\nto = ["bus"]\n'
    )


async def start(photohook: Callable[..., Any], broker: Broker, **kwargs: Any) -> Photohook:
    started: Photohook = await photohook(
        config(broker, **kwargs), environ={"PHOTOHOOK_ADMIN_TOKEN": ADMIN}
    )
    return started


@every_kind
async def test_a_routed_event_arrives_once_signed_as_for_http(
    photohook: Callable[..., Any], broker: Broker
) -> None:
    app = await start(photohook, broker)
    [event_id] = await app.send(COMPLETED)
    await eventually(lambda: app.all_in("delivered", 1))
    [message] = await broker.messages()
    headers = message.headers
    assert headers["webhook-id"] == event_id
    Webhook(SECRET).verify(message.body, headers)  # what a consumer does, as for HTTP
    event = await app.store.get_event(event_id)
    assert event is not None
    assert orjson.loads(message.body) == event.to_dict()
    assert headers["photohook-event-type"] == "fotor.task.completed"
    assert headers["photohook-source"] == "fotor"
    assert headers["photohook-task-id"] == COMPLETED["taskId"]
    [delivery] = await app.deliveries()
    [attempt] = (await app.store.attempts([delivery.id]))[delivery.id]
    assert attempt.ok and attempt.response_body is not None
    confirmed = {"rabbitmq": "confirmed by RabbitMQ", "redis": "added to Redis stream"}
    assert confirmed.get(broker.kind, "acknowledged by JetStream") in attempt.response_body
    await asyncio.sleep(0.3)
    assert len(await broker.messages()) == 1


@every_kind
async def test_a_refused_publish_goes_dead_and_is_retried_to_success(
    photohook: Callable[..., Any], broker: Broker
) -> None:
    await broker.refuse()
    app = await start(photohook, broker, extra='retry_schedule = ["50ms", "50ms"]')
    [event_id] = await app.send(COMPLETED)
    await eventually(lambda: app.all_in("dead", 1))
    [delivery] = await app.deliveries()
    assert delivery.attempts == 3
    assert delivery.last_error is not None and delivery.last_error.startswith("refused: ")
    await broker.accept()
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {ADMIN}"}) as client:
        response = await client.post(f"{app.base_url}/api/deliveries/{delivery.id}/retry")
    assert response.status_code == 200, response.text
    await eventually(lambda: app.all_in("delivered", 1))
    [message] = await broker.messages()
    assert message.headers["webhook-id"] == event_id


@every_kind
async def test_a_connection_cut_mid_run_loses_nothing(
    photohook: Callable[..., Any], broker: Broker
) -> None:
    relay = Relay(*target_of(broker.url))
    await relay.start()
    try:
        app = await start(
            photohook,
            broker,
            url=relayed(broker.url, relay),
            extra='timeout = "2s"\nretry_schedule = ["200ms", "200ms", "500ms", "1s", "1s", "2s"]',
        )
        sent = await app.send(COMPLETED, taskId="before-the-cut")
        await eventually(lambda: app.all_in("delivered", 1))
        await relay.cut()
        for n in range(5):
            sent += await app.send(COMPLETED, taskId=f"during-the-cut-{n}")
        await eventually(lambda: _failed_once(app))
        await asyncio.sleep(1)
        await relay.restore()
        await eventually(lambda: app.all_in("delivered", 6), within=30)
        arrived = [m.headers["webhook-id"] for m in await broker.messages()]
        assert set(arrived) == set(sent)
    finally:
        await relay.close()


async def _failed_once(app: Photohook) -> bool:
    return any(d.attempts >= 1 and d.state == "retrying" for d in await app.deliveries())


@every_kind
async def test_a_tasks_events_arrive_in_order(
    photohook: Callable[..., Any], broker: Broker
) -> None:
    app = await start(photohook, broker)
    for n in range(3):
        await app.send(IN_PROGRESS, taskId=f"task-{n}")
        await app.send(COMPLETED, taskId=f"task-{n}")
    await eventually(lambda: app.all_in("delivered", 6))
    statuses: dict[str, list[str]] = {}
    for message in await broker.messages():
        body = orjson.loads(message.body)
        statuses.setdefault(body["task_id"], []).append(body["status"])
    assert statuses == {f"task-{n}": ["in_progress", "completed"] for n in range(3)}


@every_kind
def test_check_connect_says_which_brokers_answer_and_never_prints_credentials(
    tmp_path: Path, kind: str, broker: Broker
) -> None:
    """``photohook check --connect``, as a process: one destination answers, one does not."""
    url = broker.url
    password = "broker-password-never-shown"
    parts = urlsplit(url)
    closed = f"{parts.scheme}://someone:{password}@127.0.0.1:{free_port()}{parts.path}"
    (tmp_path / "photohook.toml").write_text(
        "[destinations.up]\n"
        + KINDS[kind]().config("env:BROKER_URL")
        + "[destinations.down]\n"
        + KINDS[kind]().config(closed)
    )
    result = run_cli("check", "--connect", cwd=tmp_path, env={"BROKER_URL": url})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "destination up: connected to " in result.stdout
    assert "destination down: cannot connect: " in result.stdout
    assert password not in result.stdout + result.stderr
    answered = run_cli("check", cwd=tmp_path, env={"BROKER_URL": url})
    assert answered.returncode == 0 and "connected" not in answered.stdout


@every_kind
async def test_a_broker_back_before_the_next_delivery_takes_it_at_the_first_try(
    photohook: Callable[..., Any], broker: Broker
) -> None:
    """The connection died while idle (the broker restarted): the next delivery opens a new
    one instead of failing on the dead one."""
    relay = Relay(*target_of(broker.url))
    await relay.start()
    try:
        app = await start(photohook, broker, url=relayed(broker.url, relay))
        await app.send(COMPLETED, taskId="before")
        await eventually(lambda: app.all_in("delivered", 1))
        await relay.cut()
        await relay.restore()
        await app.send(COMPLETED, taskId="after")
        await eventually(lambda: app.all_in("delivered", 2))
        assert [d.attempts for d in await app.deliveries()] == [1, 1]
    finally:
        await relay.close()


# aio-pika's Connection.__del__ makes a close() coroutine and schedules it with ensure_future,
# which fails outside the connection's loop: a connection whose login was refused, collected by
# another thread, leaves that coroutine never awaited (aio-pika 10.2, connection.py).
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <coroutine object Connection.close"
    ":pytest.PytestUnraisableExceptionWarning",
    "ignore:coroutine 'Connection.close' was never awaited:RuntimeWarning",
)
@every_kind
async def test_credentials_never_reach_the_recorded_errors(
    photohook: Callable[..., Any], broker: Broker
) -> None:
    parts = urlsplit(broker.url)
    user, password = "photohook-user-x1", "photohook-password-x2"
    closed = f"{parts.scheme}://{user}:{password}@127.0.0.1:{free_port()}{parts.path}"
    urls = [closed]
    if broker.kind == "rabbitmq":  # the broker answers, and refuses the login by name
        urls.append(f"{parts.scheme}://{user}:{password}@{parts.hostname}:{parts.port}/")
    config = "".join(
        f'[destinations.bus{n}]\n{broker.config(url)}retry_schedule = []\ntimeout = "3s"\n'
        for n, url in enumerate(urls)
    )
    routes = (
        f"[[routes]]\nto = [{', '.join(f'{chr(34)}bus{n}{chr(34)}' for n in range(len(urls)))}]\n"
    )
    app: Photohook = await photohook(config + routes)
    await app.send(COMPLETED)
    await eventually(lambda: app.all_in("dead", len(urls)))
    for delivery in await app.deliveries():
        assert delivery.last_error
        assert user not in delivery.last_error and password not in delivery.last_error


@pytest.mark.parametrize("kind", ["rabbitmq"])
async def test_rabbitmq_refuses_what_no_queue_takes_and_keeps_the_others_flowing(
    photohook: Callable[..., Any], broker: Broker
) -> None:
    assert isinstance(broker, RabbitMQ)
    await broker.channel.declare_exchange(f"{broker.name}-completed", aio_pika.ExchangeType.TOPIC)
    await broker.queue.bind(f"{broker.name}-completed", routing_key="photohook.#")
    table = (
        f'[destinations.bus]\nkind = "rabbitmq"\nurl = "{broker.url}"\n'
        f'exchange = "{broker.name}-{{status}}"\nretry_schedule = []\nmax_in_flight = 8\n'
        '[destinations.nowhere]\nkind = "rabbitmq"\n'
        f'url = "{broker.url}"\nexchange = "{broker.name}-completed"\n'
        'routing_key = "unbound.{status}"\nretry_schedule = []\n'
        '[[routes]]\nto = ["bus", "nowhere"]\n'
    )
    app: Photohook = await photohook(table, environ={"PHOTOHOOK_ADMIN_TOKEN": ADMIN})
    async with httpx.AsyncClient(
        base_url=app.base_url, headers={"authorization": f"Bearer {ADMIN}"}
    ) as admin:
        # Held, then let go at once: the refused and the taken are published side by side.
        assert (await admin.post("/api/destinations/bus/pause")).status_code == 200
        for n in range(6):
            await app.send(IN_PROGRESS if n % 2 else COMPLETED, taskId=f"task-{n}")
        assert (await admin.post("/api/destinations/bus/resume")).status_code == 200
    await eventually(lambda: app.settled(12))
    found = {(d.destination, d.event_id): d for d in await app.deliveries()}
    for (destination, _), delivery in found.items():
        if destination == "nowhere":
            assert delivery.state == "dead"
            assert "NO_ROUTE" in (delivery.last_error or "")
    bus = [d for (name, _), d in found.items() if name == "bus"]
    delivered = [d for d in bus if d.state == "delivered"]
    refused = [d for d in bus if d.state == "dead"]
    assert len(delivered) == 3 and all(d.attempts == 1 for d in delivered)
    assert len(refused) == 3
    assert all("has no exchange" in (d.last_error or "") for d in refused)
    assert all(f"{broker.name}-in_progress" in (d.last_error or "") for d in refused)
