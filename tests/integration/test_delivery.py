"""Delivery to real HTTP sinks on loopback, photohook itself under uvicorn."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import trustme

from receiver import __version__, ssrf
from receiver.delivery import senders
from tests.helpers import fixture

from .conftest import SECRET
from .servers import Reply, Sink, eventually, running

Start = Callable[..., Any]


def destination(name: str, url: str, extra: str = "") -> str:
    return f'[destinations.{name}]\nurl = "{url}/hook"\nsecret = "{SECRET}"\n{extra}\n'


async def test_events_are_delivered_signed_and_verifiable(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink(secret=SECRET)
    app = await photohook(destination("app", sink_url(sink)) + '[[routes]]\nto = ["app"]\n')
    [event_id] = await app.send()
    await eventually(lambda: len(sink.received) == 1)
    [received] = sink.received
    assert received.verified is True
    assert received.webhook_id == event_id
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"] == f"photohook/{__version__}"
    body = received.json()
    assert body["id"] == event_id
    assert body["type"] == "fotor.task.completed"
    assert body["payload"] == fixture("fotor/upscale-completed")
    await eventually(lambda: _states(app, {"app": "delivered"}))
    [delivery] = await app.deliveries()
    assert delivery.attempts == 1


async def test_no_route_means_stored_not_delivered(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink()
    app = await photohook(destination("app", sink_url(sink)))
    await app.send()
    assert await app.deliveries() == []


async def test_500_is_retried_with_the_same_webhook_id_until_it_succeeds(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink(secret=SECRET, script=lambda n: Reply(500 if n < 2 else 200))
    url = sink_url(sink)
    app = await photohook(
        destination("app", url, 'retry_schedule = ["50ms", "50ms", "50ms"]')
        + '[[routes]]\nto = ["app"]\n'
    )
    [event_id] = await app.send()
    await eventually(lambda: _states(app, {"app": "delivered"}))
    assert sink.ids == [event_id] * 3
    assert all(r.verified for r in sink.received)  # a fresh signature on each attempt
    [delivery] = await app.deliveries()
    assert delivery.attempts == 3


async def test_a_timeout_is_a_failed_attempt(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink(script=lambda n: Reply(delay=3.0 if n == 0 else 0.0))
    app = await photohook(
        destination("app", sink_url(sink), 'timeout = "300ms"\nretry_schedule = ["50ms"]')
        + '[[routes]]\nto = ["app"]\n'
    )
    await app.send()
    await eventually(lambda: _states(app, {"app": "delivered"}))
    [delivery] = await app.deliveries()
    assert delivery.attempts == 2


async def test_connection_refused_until_dead(photohook: Start) -> None:
    from tests.helpers import free_port

    closed = f"http://127.0.0.1:{free_port()}"
    app = await photohook(
        destination("app", closed, 'retry_schedule = ["20ms", "20ms"]')
        + '[[routes]]\nto = ["app"]\n'
    )
    await app.send()
    await eventually(lambda: _states(app, {"app": "dead"}))
    [delivery] = await app.deliveries()
    assert delivery.attempts == 3
    assert "ConnectError" in (delivery.last_error or "")


async def test_retry_after_is_honoured_within_bounds(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink(
        script=lambda n: (
            Reply(429, {"Retry-After": "1"}) if n == 0 else Reply(503, {"Retry-After": "3600"})
        )
    )
    app = await photohook(
        destination("app", sink_url(sink), 'retry_schedule = ["2s", "10s"]')
        + '[[routes]]\nto = ["app"]\n'
    )
    await app.send()
    await eventually(lambda: _states(app, {"app": "retrying"}))
    [delivery] = await app.deliveries()
    # Retry-After: 1 is sooner than the schedule's 2s: the 2s delay stands (no jitter on it).
    assert delivery.next_attempt_at is not None
    assert 1.8 <= delivery.next_attempt_at - delivery.updated_at <= 2.0
    await eventually(lambda: _attempts(app, 2), within=10)
    [delivery] = await app.deliveries()
    # Retry-After: 3600 is clamped to twice the scheduled 10s.
    assert delivery.next_attempt_at is not None
    assert 19.8 <= delivery.next_attempt_at - delivery.updated_at <= 20.0
    assert len(sink.received) == 2


async def test_410_disables_the_destination_and_resume_sends_what_was_held(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    gone = Sink(script=lambda n: Reply(410 if n == 0 else 200))
    other = Sink()
    app = await photohook(
        destination("gone", sink_url(gone))
        + destination("other", sink_url(other))
        + '[[routes]]\nto = ["gone", "other"]\n'
    )
    await app.send()
    await eventually(lambda: _states(app, {"gone": "held", "other": "delivered"}))
    await app.send(taskId="second-task")
    await eventually(lambda: len(other.received) == 2)
    assert len(gone.received) == 1  # disabled: nothing more is sent
    [status] = [s for s in await app.store.destination_statuses(time.time()) if s.name == "gone"]
    assert status.state == "disabled"
    assert "410" in (status.reason or "")
    assert await app.store.set_destination_state("gone", "active", None)
    await eventually(lambda: len(gone.received) == 3)


async def test_redirects_are_failures_and_never_followed(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    listener = Sink()
    target = sink_url(listener)
    redirecting = Sink(script=lambda n: Reply(302, {"Location": f"{target}/internal"}))
    app = await photohook(
        destination("app", sink_url(redirecting), "retry_schedule = []")
        + '[[routes]]\nto = ["app"]\n'
    )
    await app.send()
    await eventually(lambda: _states(app, {"app": "dead"}))
    [delivery] = await app.deliveries()
    assert delivery.last_status == 302
    assert "redirects are not followed" in (delivery.last_error or "")
    assert listener.received == []


async def test_each_delivery_stands_alone_and_its_answer_is_recorded_as_sent(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    # An answer's cookie never rides along with the next delivery, and no compression is offered,
    # so the recorded response body is the bytes the destination sent.
    sink = Sink(script=lambda n: Reply(headers={"Set-Cookie": f"session={n}; Path=/"}))
    app = await photohook(destination("app", sink_url(sink)) + '[[routes]]\nto = ["app"]\n')
    await app.send()
    await eventually(lambda: _states(app, {"app": "delivered"}))
    await app.send(taskId="second-task")
    await eventually(lambda: len(sink.received) == 2)
    assert all("cookie" not in r.headers for r in sink.received)
    assert all("accept-encoding" not in r.headers for r in sink.received)
    [delivery, *_] = await app.deliveries()
    [attempt] = (await app.store.attempts([delivery.id]))[delivery.id]
    assert attempt.response_body == "ok"


async def test_connections_are_kept_alive_one_per_place_in_flight(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink(script=lambda n: Reply(delay=0.05))
    app = await photohook(
        destination("app", sink_url(sink), "max_in_flight = 2") + '[[routes]]\nto = ["app"]\n'
    )
    await asyncio.gather(*(app.send(taskId=f"task-{index}") for index in range(8)))
    await eventually(lambda: app.all_in("delivered", 8))
    assert sink.most_in_flight == 2
    assert len({r.port for r in sink.received}) == 2


async def test_https_destinations_are_verified_against_the_name_in_their_url(
    photohook: Start, stack: ExitStack, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca.configure_trust(senders.tls_context())  # what every delivery of this process trusts
    certificates = {}
    for name in ("localhost", "elsewhere.example"):
        certificates[name] = tmp_path / f"{name}.pem"
        ca.issue_cert(name).private_key_and_cert_chain_pem.write_to_path(certificates[name])
    sink, impostor = Sink(secret=SECRET), Sink()
    url = stack.enter_context(
        running(sink.app, lifespan="off", certificate=certificates["localhost"])
    )
    wrong = stack.enter_context(
        running(impostor.app, lifespan="off", certificate=certificates["elsewhere.example"])
    )
    app = await photohook(
        destination("app", url, "max_in_flight = 2")
        + destination("wrong", wrong, "retry_schedule = []")
        + '[[routes]]\nto = ["app", "wrong"]\n'
    )
    # Each place's own connection trusts the same authorities, and TLS verifies the name in the
    # URL. (Private destinations are allowed here, so the URL is used as it is: the pinned path,
    # to the checked address, is the public destination's test below.)
    await asyncio.gather(*(app.send(taskId=f"task-{index}") for index in range(4)))
    await eventually(lambda: app.settled(8))
    assert {(d.destination, d.state) for d in await app.deliveries()} == {
        ("app", "delivered"),
        ("wrong", "dead"),
    }
    assert len(sink.received) == 4
    assert all(received.verified for received in sink.received)
    assert impostor.received == []
    refused = await app.deliveries(destination="wrong")
    assert all("CERTIFICATE_VERIFY_FAILED" in (d.last_error or "") for d in refused)


PUBLIC_NAME = "hooks.photohook.test"


async def test_a_public_destination_is_sent_to_the_checked_address_under_its_own_name(
    photohook: Start, stack: ExitStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path production takes: the name is resolved and checked once, the connection goes to
    that address, and the request still carries the URL's Host and TLS name (SNI)."""
    ca = trustme.CA()
    certificate = tmp_path / "public.pem"
    ca.issue_cert(PUBLIC_NAME).private_key_and_cert_chain_pem.write_to_path(certificate)
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    monkeypatch.setattr(senders, "tls_context", lambda: trusted)
    # The resolver seam: the name resolves to the sink's loopback address, and the guard takes
    # that one address of that one name for a public one. Every other check stays as it is.
    # (The asyncio loop, not uvloop: its look-ups go through socket.getaddrinfo.)
    lookups: list[str] = []
    system_getaddrinfo, guard = socket.getaddrinfo, ssrf.check_address

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name == PUBLIC_NAME:
            lookups.append(name)
            return system_getaddrinfo("127.0.0.1", port, *args, **kwargs)
        return system_getaddrinfo(host, port, *args, **kwargs)

    checked: list[str] = []

    def check_address(host: str, address: ssrf.IPAddress) -> None:
        if host == PUBLIC_NAME and address == ipaddress.ip_address("127.0.0.1"):
            checked.append(str(address))
            return
        guard(host, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(ssrf, "check_address", check_address)
    sink, server_names = Sink(secret=SECRET), list[str | None]()
    url = stack.enter_context(
        running(sink.app, lifespan="off", certificate=certificate, server_names=server_names)
    )
    port = int(url.rsplit(":", 1)[1])
    app = await photohook(
        destination("public", f"https://{PUBLIC_NAME}:{port}") + '[[routes]]\nto = ["public"]\n',
        allow_private=False,
        loop="asyncio",
    )
    assert (lookups, checked) == ([PUBLIC_NAME], ["127.0.0.1"])  # the configuration's check
    [event_id] = await app.send()
    await eventually(lambda: app.settled(1))
    [delivery] = await app.deliveries()
    assert (delivery.state, delivery.last_error) == ("delivered", None)
    [received] = sink.received
    assert (received.webhook_id, received.verified) == (event_id, True)
    assert received.headers["host"] == f"{PUBLIC_NAME}:{port}"
    assert server_names == [PUBLIC_NAME]
    # One more look-up, checked: the connection went to the checked address, not to a second
    # answer of the resolver (which DNS rebinding would make a different one).
    assert (lookups, checked) == ([PUBLIC_NAME] * 2, ["127.0.0.1"] * 2)


async def test_a_slow_destination_does_not_delay_the_others(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    slow = Sink(script=lambda n: Reply(delay=1.0))
    fast = Sink()
    app = await photohook(
        destination("slow", sink_url(slow), "max_in_flight = 1")
        + destination("fast", sink_url(fast))
        + '[[routes]]\nto = ["slow", "fast"]\n'
    )
    for index in range(5):
        await app.send(taskId=f"task-{index}")
    await eventually(lambda: len(fast.received) == 5, within=4)
    assert len(slow.received) <= 2  # one at a time, a second each


async def test_per_task_order_holds_across_retries(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink(script=lambda n: Reply(500 if n < 2 else 200))
    app = await photohook(
        destination("app", sink_url(sink), 'retry_schedule = ["300ms", "300ms"]')
        + '[[routes]]\nto = ["app"]\n'
    )
    [in_progress] = await app.send(fixture("fotor/upscale-in-progress"))
    [completed] = await app.send()
    await eventually(lambda: app.all_in("delivered", 2))
    assert sink.ids == [in_progress, in_progress, in_progress, completed]


async def test_transform_shapes_the_body_or_skips(
    photohook: Start, sink_url: Callable[[Sink], str]
) -> None:
    sink = Sink(secret=SECRET)
    app = await photohook(
        destination("app", sink_url(sink), 'transform = "tests.plugins.hooks:to_order_update"')
        + '[[routes]]\nto = ["app"]\n'
    )
    await app.send()
    await app.send(fixture("fotor/bg-remove-failed"))  # no businessId: the transform skips it
    await eventually(lambda: app.settled(2))
    assert [r.json() for r in sink.received] == [{"order": "order-20261121-0042", "done": True}]
    assert sink.received[0].verified
    assert sorted(d.state for d in await app.deliveries()) == ["delivered", "skipped"]


async def _states(app: Any, expected: dict[str, str]) -> bool:
    return bool(await app.states() == expected)


async def _attempts(app: Any, count: int) -> bool:
    return any(d.attempts == count for d in await app.deliveries())
