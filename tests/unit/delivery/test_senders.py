"""The sender's edges, through its injectable transport: a named destination is connected to at
its checked address (the Host header and TLS name kept), ``Retry-After`` in every date form,
and what a failed handler leaves for the schedule."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import httpx
import orjson
import pytest

from receiver import DeliveryContext, Event
from receiver.__about__ import __version__
from receiver.delivery.senders import HandlerSender, HTTPSender, parse_retry_after
from receiver.destinations import HandlerDestination, HTTPDestination
from receiver.secrets import Secret
from receiver.signing import decode_secret, verify
from tests.unit.test_routing import event

CONTEXT = DeliveryContext(delivery_id="dlv_1", attempt=1, destination="app", message_id="evt_1")

ADDRESS = "93.184.215.14"


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """``public.example`` resolves to one public address; nothing else resolves."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "public.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ADDRESS, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class Empty(httpx.AsyncByteStream):
    """A response body that streams, as a real transport's does."""

    async def __aiter__(self) -> Any:
        yield b""


class Recorder:
    """A transport that answers 204 and keeps each request as it would go on the wire."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.answer)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(204, stream=Empty())


@pytest.mark.usefixtures("resolver")
@pytest.mark.parametrize(
    ("url", "netloc", "port"),
    [
        ("https://public.example/hook", "public.example", None),
        ("https://public.example:8443/hook", "public.example:8443", 8443),
        ("http://public.example/hook", "public.example", None),
    ],
)
async def test_a_named_destination_is_reached_at_its_checked_address(
    url: str, netloc: str, port: int | None
) -> None:
    recorder = Recorder()
    destination = HTTPDestination(name="public", url=url)
    result = await HTTPSender(destination, recorder.transport).send(event())
    assert result.attempt.ok, result.attempt.error
    (request,) = recorder.requests
    assert request.url.host == ADDRESS  # not resolved again at connect time: no rebinding
    assert request.url.port == port
    assert request.url.path == "/hook"
    assert request.headers["host"] == netloc
    assert request.extensions["sni_hostname"] == "public.example"  # TLS verifies the name


@pytest.mark.usefixtures("resolver")
async def test_an_address_destination_is_sent_as_it_is() -> None:
    recorder = Recorder()
    destination = HTTPDestination(name="public", url=f"http://{ADDRESS}:8080/hook")
    result = await HTTPSender(destination, recorder.transport).send(event())
    assert result.attempt.ok, result.attempt.error
    (request,) = recorder.requests
    assert str(request.url) == f"http://{ADDRESS}:8080/hook"
    assert request.headers["host"] == f"{ADDRESS}:8080"
    assert "sni_hostname" not in request.extensions


@pytest.mark.usefixtures("resolver")
async def test_an_unresolvable_destination_is_a_failed_attempt_not_a_crash() -> None:
    recorder = Recorder()
    destination = HTTPDestination(name="gone", url="https://gone.example/hook")
    result = await HTTPSender(destination, recorder.transport).send(event())
    assert not result.attempt.ok
    assert result.attempt.error == "OSError: cannot resolve gone.example: Name or service not known"
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("in_zone", "in_gmt"),
    [
        ("Sun, 06 Dec 2099 12:00:00 +0200", "Sun, 06 Dec 2099 10:00:00 GMT"),
        ("Sun, 06 Dec 2099 10:00:00 -0000", "Sun, 06 Dec 2099 10:00:00 GMT"),
    ],
)
def test_retry_after_dates_count_from_the_instant_they_name(in_zone: str, in_gmt: str) -> None:
    zoned, gmt = parse_retry_after(in_zone), parse_retry_after(in_gmt)
    assert zoned is not None and gmt is not None
    assert abs(zoned - gmt) < 5


def test_a_retry_after_date_without_a_zone_in_the_past_is_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000") == 0.0
    assert parse_retry_after(" 30 ") == 30.0


def fails(event: Event) -> None:
    raise RuntimeError("the handler is broken")


async def test_a_failed_handler_leaves_the_delay_to_the_schedule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = HandlerSender(HandlerDestination(name="app", handler=fails))
    with caplog.at_level(logging.DEBUG, "photohook.delivery"):
        result = await sender.send(event(id="evt_failed"), CONTEXT)
    (record,) = caplog.records
    assert record.getMessage() == "handler of destination app failed on evt_failed"
    assert record.exc_info is not None  # the traceback, for debugging
    assert not result.attempt.ok
    assert result.attempt.error == "RuntimeError: the handler is broken"
    assert result.retry_after is None
    delay = sender.destination.retry.next_delay(1, result.retry_after)
    assert delay is not None and 4.0 <= delay <= 6.0


class AsyncCallable:
    """A handler object whose ``__call__`` is async: calling it returns a coroutine."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, event: Event) -> None:
        self.seen.append(event.id)


async def test_a_handler_that_returns_a_coroutine_is_awaited() -> None:
    handler = AsyncCallable()
    sender = HandlerSender(HandlerDestination(name="app", handler=handler))
    result = await sender.send(event(id="evt_awaited"), CONTEXT)
    assert result.attempt.ok, result.attempt.error
    assert handler.seen == ["evt_awaited"]


class Endless(httpx.AsyncByteStream):
    """A response body of 1000-byte chunks that would go on for ever; counts what was read."""

    def __init__(self) -> None:
        self.read = 0

    async def __aiter__(self) -> Any:
        for index in range(10_000):
            self.read += 1
            yield bytes([ord("a") + index % 26]) * 1000


async def test_the_recorded_answer_is_the_first_2048_bytes_of_a_streamed_body() -> None:
    body = Endless()
    transport = httpx.MockTransport(lambda request: httpx.Response(500, stream=body))
    destination = HTTPDestination(name="local", url="http://127.0.0.1:9/hook", allow_private=True)
    result = await HTTPSender(destination, transport).send(event())
    assert result.attempt.status_code == 500
    assert result.attempt.response_body == b"a" * 1000 + b"b" * 1000 + b"c" * 48
    assert body.read == 3  # the rest is never read


def answering(status: int, headers: dict[str, str] | None = None) -> Recorder:
    recorder = Recorder()
    recorder.answer = lambda request: (  # type: ignore[method-assign]
        recorder.requests.append(request) or httpx.Response(status, headers=headers, stream=Empty())
    )
    recorder.transport = httpx.MockTransport(recorder.answer)
    return recorder


def local(**options: Any) -> HTTPDestination:
    return HTTPDestination(
        name="local", url="http://127.0.0.1:9/hook", allow_private=True, **options
    )


async def test_the_request_carries_the_standard_webhooks_headers_and_the_destinations_own() -> None:
    recorder = answering(200)
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    destination = local(secrets=(Secret(secret),), headers={"x-team": "imaging"})
    before = int(time.time())
    result = await HTTPSender(destination, recorder.transport).send(event(id="evt_signed"))
    assert result.attempt.ok
    (request,) = recorder.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"photohook/{__version__}"
    assert request.headers["x-team"] == "imaging"
    assert request.headers["webhook-id"] == "evt_signed"
    timestamp = int(request.headers["webhook-timestamp"])
    assert before <= timestamp <= time.time()
    assert orjson.loads(request.content)["id"] == "evt_signed"
    keys = [decode_secret(secret)]
    signature = request.headers["webhook-signature"]
    assert verify(keys, "evt_signed", timestamp, request.content, signature, now=timestamp)


@pytest.mark.parametrize(
    ("status", "ok", "error", "gone"),
    [
        (200, True, None, False),
        (204, True, None, False),
        (299, True, None, False),
        (300, False, "HTTP 300 (redirects are not followed)", False),
        (399, False, "HTTP 399 (redirects are not followed)", False),
        (400, False, "HTTP 400", False),
        (410, False, "HTTP 410", True),
        (411, False, "HTTP 411", False),
        (199, False, "HTTP 199", False),
    ],
)
async def test_how_each_status_counts(status: int, ok: bool, error: str | None, gone: bool) -> None:
    result = await HTTPSender(local(), answering(status).transport).send(event())
    assert result.attempt.ok is ok
    assert result.attempt.status_code == status
    assert result.attempt.error == error
    assert result.gone is gone


@pytest.mark.parametrize(("status", "honoured"), [(429, True), (503, True), (500, False)])
async def test_retry_after_is_read_from_429_and_503_only(status: int, honoured: bool) -> None:
    recorder = answering(status, {"Retry-After": "7"})
    result = await HTTPSender(local(), recorder.transport).send(event())
    assert result.retry_after == (7.0 if honoured else None)


async def test_a_destination_that_does_not_answer_in_time_is_a_timed_out_attempt() -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    sender = HTTPSender(local(timeout=0.1), httpx.MockTransport(never))
    result = await sender.send(event(), CONTEXT)
    assert not result.attempt.ok
    assert result.attempt.error == "timed out after 0.1s"


async def test_a_failing_transform_is_a_failed_attempt_and_none_skips(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: Event) -> Any:
        raise ValueError("no such field")

    recorder = answering(200)
    with caplog.at_level(logging.DEBUG, "photohook.delivery"):
        failed = await HTTPSender(local(transform=broken), recorder.transport).send(event())
    (record,) = caplog.records
    assert record.getMessage() == "transform of destination local failed"
    assert record.exc_info is not None
    assert not failed.attempt.ok and not failed.skipped
    assert failed.attempt.error == "transform failed: ValueError: no such field"
    skipped = await HTTPSender(local(transform=lambda e: None), recorder.transport).send(event())
    assert skipped.skipped and skipped.attempt.ok
    assert skipped.attempt.error == "not sent: the transform gave None"
    shaped = await HTTPSender(local(transform=lambda e: {"only": e.id}), recorder.transport).send(
        event(id="evt_shaped")
    )
    assert shaped.attempt.ok
    assert [orjson.loads(r.content) for r in recorder.requests] == [{"only": "evt_shaped"}]


async def test_an_attempt_records_when_it_started_how_long_it_took_and_the_answers_headers() -> (
    None
):
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return httpx.Response(202, headers={"x-request": "r-1"}, stream=Empty())

    before = time.time()
    result = await HTTPSender(local(), httpx.MockTransport(slow)).send(event())
    attempt = result.attempt
    assert before <= attempt.started_at <= time.time()
    assert 45 <= attempt.duration_ms < 10_000  # milliseconds
    assert attempt.response_headers is not None
    assert ["x-request", "r-1"] in orjson.loads(attempt.response_headers)


@pytest.mark.usefixtures("resolver")
async def test_a_name_that_resolves_to_a_private_address_is_refused_at_connect_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    getaddrinfo = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host == "rebound.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]
        return getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    recorder = Recorder()
    destination = HTTPDestination(name="rebound", url="https://rebound.example/hook")
    result = await HTTPSender(destination, recorder.transport).send(event())
    assert not result.attempt.ok
    assert result.attempt.error == "refused: rebound.example (10.0.0.7) is a private address"
    assert recorder.requests == []


async def test_a_connection_failure_without_words_still_says_what_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("")

    result = await HTTPSender(local(), httpx.MockTransport(refuse)).send(event())
    assert result.attempt.error == "ConnectError: connection failed"
