"""Hostile input, authentication attacks, SSRF destinations and slow clients."""

from __future__ import annotations

import asyncio
import gzip
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixture
from tests.integration.servers import Reply, Sink, running

from .helpers import Serve, fotor_body, rss_kib, run_cli, size, stored_event_ids, wait_until

KEYS = "new-key-2026,old-key-2025"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, str]]:
    workdir = tmp_path_factory.mktemp("hostile")
    (workdir / "photohook.toml").write_text(
        '[server]\nmax_body_bytes = 262144\ntrusted_proxies = ["10.0.0.0/8"]\n'
        'header_timeout = "2s"\nbody_timeout = "2s"\n'
        '[sources.fotor]\nrequire = ["token", "ip"]\nallow_ips = ["127.0.0.1"]\n'
        '[sources.fotor-ip]\nkind = "fotor"\nrequire = ["ip"]\nallow_ips = ["54.212.95.175"]\n'
        '[sources.crop]\nkind = "cropphoto"\nsecrets = ["crop-secret-value-1", "crop-secret-old"]\n'
    )
    serve = Serve(workdir, env={"PHOTOHOOK_SECRET_KEYS": KEYS})
    serve.start()
    url = run_cli(
        "url", "fotor", "--base-url", serve.base_url, cwd=workdir, env=serve.env
    ).stdout.strip()
    yield serve, url
    serve.stop()


def _json_error(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
    body = response.json()
    assert body["ok"] is False
    assert body["error"]["code"]


invalid_fotor = st.one_of(
    st.fixed_dictionaries(
        {
            "taskId": st.integers() | st.none() | st.lists(st.text()),
            "status": st.just(1),
            "type": st.just("x"),
        }
    ),
    st.fixed_dictionaries(
        {
            "taskId": st.text(min_size=1),
            "status": st.integers().filter(lambda n: n not in (0, 1, 2))
            | st.text()
            | st.booleans(),
            "type": st.just("x"),
        }
    ),
    st.fixed_dictionaries({"taskId": st.text(min_size=1), "status": st.sampled_from([0, 1, 2])}),
    st.fixed_dictionaries(
        {
            "taskId": st.text(min_size=1),
            "status": st.just(1),
            "type": st.just("x"),
            "avatarResult": st.dictionaries(st.text(), st.integers())
            | st.lists(st.integers(), min_size=1),
        }
    ),
    st.lists(st.integers()),
    st.text(),
    st.integers(),
)


def test_hostile_input_is_refused_with_the_json_error_shape(server: tuple[Serve, str]) -> None:
    serve, url = server
    assert serve.process is not None
    rss_before = rss_kib(serve.process.pid)
    statuses: Counter[int] = Counter()
    json_headers = {"content-type": "application/json"}

    deep = b"[" * 10_000 + b"]" * 10_000
    nasty: list[tuple[bytes | Any, dict[str, str]]] = [
        (b"\xff\xfe\xfd not utf-8", json_headers),
        (b'{"taskId": "\xc3\x28", "status": 1, "type": "x"}', json_headers),
        (deep, json_headers),
        (b'{"taskId": "t", "status": ' + b"9" * 5000 + b', "type": "x"}', json_headers),
        (b'{"taskId": "t", "status": 1e999, "type": "x"}', json_headers),
        (b'{"taskId": "t", "status": 1, "status": "one", "type": "x"}', json_headers),
        (b'{"taskId": 5, "status": 1, "type": "x"}', json_headers),
        (b"{}", json_headers),
        (b"x" * (10 * 1024 * 1024), json_headers),
        (
            gzip.compress(
                b'{"taskId":"t","status":1,"type":"x","pad":"' + b"0" * 5_000_000 + b'"}'
            ),
            json_headers | {"content-encoding": "gzip"},
        ),
        (b'{"taskId": "t", "status": 1, "type": "x"}', {"content-type": "text/plain"}),
    ]

    def unsized() -> Iterator[bytes]:
        for _ in range(10 * 16):
            yield b"y" * 65536  # 10 MiB without Content-Length

    with httpx.Client(timeout=30) as client:
        for body, headers in nasty:
            response = client.post(url, content=body, headers=headers)
            _json_error(response)
            statuses[response.status_code] += 1
        response = client.post(url, content=unsized(), headers=json_headers)
        _json_error(response)
        statuses[response.status_code] += 1
        assert client.get(f"{serve.base_url}/healthz").status_code == 200

        @settings(max_examples=size(300, 10_000), deadline=None)
        @given(body=invalid_fotor)
        def generated(body: Any) -> None:
            response = client.post(url, json=body)
            _json_error(response)
            statuses[response.status_code] += 1

        generated()
        flood = socket.create_connection(("127.0.0.1", serve.port))
        flood.sendall(b"POST / HTTP/1.1\r\nHost: a\r\n" + b"X-Flood: " + b"f" * 8000 + b"\r\n" * 1)
        flood.sendall(b"".join(b"X-%d: %s\r\n" % (i, b"v" * 200) for i in range(1000)) + b"\r\n")
        assert flood.recv(200).startswith(b"HTTP/1.1 431")
        flood.close()
        assert client.get(f"{serve.base_url}/healthz").status_code == 200
    rss_growth = (rss_kib(serve.process.pid) - rss_before) / 1024
    total = sum(statuses.values())
    print(f"\n{total} hostile requests: {dict(statuses)}; RSS grew {rss_growth:.1f} MiB")
    assert not any(status >= 500 for status in statuses)
    assert stored_event_ids(serve.workdir, serve.env) == set()
    assert rss_growth < 50


def test_authentication_attacks_are_all_refused(server: tuple[Serve, str]) -> None:
    serve, url = server
    token = url.rsplit("/", 1)[1]
    base = f"{serve.base_url}/hooks"
    attempts = size(200, 1000)
    statuses: Counter[int] = Counter()
    body = fotor_body(0, prefix="auth")
    crop = fixture("cropphoto/banner-job-completed")
    other_token = run_cli(
        "url", "crop", "--base-url", serve.base_url, cwd=serve.workdir, env=serve.env
    ).stdout  # crop checks the secret, so this URL has no token

    def forged_token(i: int) -> str:
        choices = [
            "",
            token[:-1],
            token[: len(token) // 2],
            token + "A",
            token + "=",
            token.swapcase(),
            "A" * len(token),
            token[::-1],
        ]
        return choices[i % len(choices)]

    with httpx.Client(timeout=10) as client:
        for i in range(attempts):
            kind = i % 4
            if kind == 0:
                response = client.post(f"{base}/fotor/{forged_token(i)}", json=body)
            elif kind == 1:
                secret = [
                    "",
                    "crop-secret-value",
                    "crop-secret-value-1x",
                    "CROP-SECRET-VALUE-1",
                    "x",
                ][i % 5]
                response = client.post(
                    f"{base}/crop", json=crop, headers={"x-webhook-secret": secret}
                )
            elif kind == 2:
                response = client.post(f"{base}/crop", json=crop)
            else:  # Fotor's address, forged in X-Forwarded-For by a peer that is no trusted proxy
                response = client.post(
                    f"{base}/fotor-ip", json=body, headers={"x-forwarded-for": "54.212.95.175"}
                )
            statuses[response.status_code] += 1
            _json_error(response)
            assert "crop-secret" not in response.text
            assert token not in response.text
        # the token of one source is refused by another
        crop_token_of_fotor = client.post(f"{base}/crop/{token}", json=crop)
        assert crop_token_of_fotor.status_code == 401
    assert "/hooks/crop" in other_token
    print(f"\n{attempts} forged attempts: {dict(statuses)}")
    assert set(statuses) <= {401, 403, 404}  # 404: an empty token is no path at all
    assert statuses[403] == attempts // 4
    assert stored_event_ids(serve.workdir, serve.env) == set()


def test_key_rotation_keeps_old_tokens_until_the_key_is_removed(tmp_path: Path) -> None:
    old = Serve(tmp_path, env={"PHOTOHOOK_SECRET_KEYS": "old-key"})
    old.start()
    old_url = run_cli(
        "url", "fotor", "--base-url", old.base_url, cwd=tmp_path, env=old.env
    ).stdout.strip()
    old.stop()
    old_token = old_url.rsplit("/", 1)[1]
    for keys, expected in (("new-key,old-key", 200), ("new-key", 401)):
        serve = Serve(tmp_path, env={"PHOTOHOOK_SECRET_KEYS": keys})
        serve.start()
        try:
            response = httpx.post(
                f"{serve.base_url}/hooks/fotor/{old_token}",
                json=fotor_body(len(keys), prefix="rot"),
            )
            assert response.status_code == expected, keys
            new_url = run_cli(
                "url", "fotor", "--base-url", serve.base_url, cwd=tmp_path, env=serve.env
            )
            assert new_url.stdout.strip() != f"{serve.base_url}/hooks/fotor/{old_token}"
        finally:
            serve.stop()


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "0.0.0.0",
        "2130706433",
        "0177.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[fd00::1]",
        "169.254.169.254",
        "100.64.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.0.1",
    ],
)
def test_ssrf_destinations_are_refused(tmp_path: Path, host: str) -> None:
    (tmp_path / "photohook.toml").write_text(
        f'[destinations.evil]\nurl = "http://{host}:9/steal"\n[[routes]]\nto = ["evil"]\n'
    )
    for command in (["check"], ["serve", "--port", "1"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode == 2
        assert "destinations.evil.url" in result.stderr
        assert "refused" in result.stderr


def test_a_redirect_to_a_loopback_listener_is_never_followed(tmp_path: Path) -> None:
    listener = Sink()
    with running(listener.app, lifespan="off") as inside:
        redirecting = Sink(script=lambda n: Reply(302, {"Location": f"{inside}/admin"}))
        with running(redirecting.app, lifespan="off") as outside:
            # The "public" sink is on loopback here, so only it is allowed as private.
            (tmp_path / "photohook.toml").write_text(
                f'[destinations.public]\nurl = "{outside}/hook"\nallow_private = true\n'
                'retry_schedule = ["50ms"]\n[[routes]]\nto = ["public"]\n'
            )
            serve = Serve(tmp_path)
            serve.start()
            try:
                url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout
                httpx.post(url.strip(), json=fotor_body(1))
                deadline = time.monotonic() + 10
                while len(redirecting.received) < 2 and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                serve.stop()
    assert len(redirecting.received) == 2
    assert listener.received == []


def test_slow_clients_neither_block_callbacks_nor_stay_open(server: tuple[Serve, str]) -> None:
    serve, url = server
    slow = size(50, 200)
    connected: list[bool] = []  # one for each trickling client the server has taken in

    async def latencies(count: int) -> list[float]:
        found = []
        async with httpx.AsyncClient(timeout=10) as client:
            for index in range(count):
                started = time.perf_counter()
                response = await client.post(
                    url, json=fotor_body(index, prefix=f"slow-{time.time_ns()}")
                )
                assert response.status_code == 200
                found.append(time.perf_counter() - started)
        return found

    async def trickle(path: bytes, body_stage: bool) -> float:
        """Send a request a byte every 0.5s; return how long until the server closed it."""
        reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
        head = b"POST " + path + b" HTTP/1.1\r\nHost: a\r\n"
        if body_stage:
            writer.write(head + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            head = b'{"taskId": "'
        started = time.monotonic()
        closed_at = None
        for sent, byte in enumerate(head * 20):
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except (ConnectionError, OSError):
                break
            if sent == 0:
                connected.append(True)
            try:
                data = await asyncio.wait_for(reader.read(1024), 0.5)
            except TimeoutError:
                continue
            if data == b"" or data.startswith(b"HTTP/1.1 4"):
                closed_at = time.monotonic()
                break
        writer.close()
        return (closed_at or time.monotonic()) - started

    def trickling(started: threading.Event, closed: list[float]) -> None:
        # Their own thread and event loop, so that they slow only the server, not the client
        # that measures the latency.
        async def run() -> None:
            path = url.split(str(serve.port), 1)[1].encode()
            tasks = [asyncio.create_task(trickle(path, i % 2 == 1)) for i in range(slow)]
            started.set()
            closed.extend(await asyncio.gather(*tasks))

        asyncio.run(run())

    unloaded = asyncio.run(latencies(80))
    started, closed = threading.Event(), []
    thread = threading.Thread(target=trickling, args=(started, closed))
    thread.start()
    started.wait(10)
    assert wait_until(lambda: len(connected) == slow, within=10)
    loaded = asyncio.run(latencies(80))
    thread.join(30)

    def p(values: list[float], percent: int) -> float:
        return statistics.quantiles(values, n=100)[percent - 1]

    print(
        f"\n{slow} trickling clients: callback p50/p90 {p(unloaded, 50) * 1000:.1f}/"
        f"{p(unloaded, 90) * 1000:.1f} ms unloaded, {p(loaded, 50) * 1000:.1f}/"
        f"{p(loaded, 90) * 1000:.1f} ms loaded; trickles closed after at most {max(closed):.1f}s"
    )
    assert len(closed) == slow
    # Blocked by the trickles, most callbacks would wait; one slow fsync on a shared machine is
    # not that, so the p99 of 80 (their slowest) is not compared. 2 ms of slack for the machine.
    for percent in (50, 90):
        assert p(loaded, percent) <= 2 * p(unloaded, percent) + 0.002
    assert max(closed) < 2 + 2  # header_timeout / body_timeout is 2s
