"""``photohook serve`` as a real process: durability across SIGKILL, also while it delivers
(every routed event still arrives), and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LONG
from tests.helpers import fixture
from tests.integration.servers import Reply, Sink, running

from .process import Serve, run_cli


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path)
    yield server
    server.stop()


def stored_ids(workdir: Path) -> set[str]:
    result = run_cli("events", "--json", "--limit", "100000", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return {event["id"] for event in json.loads(result.stdout)}


async def send_until(
    url: str, *, concurrency: int, stop_after: int, on_enough: Callable[[], None]
) -> list[str]:
    """Send callbacks with unique task ids until ``stop_after`` are acknowledged, then call
    ``on_enough`` at once (while others are in flight); return every acknowledged event id.
    A request may fail to get an answer only once ``on_enough`` was called."""
    acknowledged: list[str] = []
    body = fixture("fotor/upscale-completed")
    counter = iter(range(10**6))
    done = asyncio.Event()

    async def sender(client: httpx.AsyncClient) -> None:
        while not done.is_set():
            try:
                response = await client.post(url, json=body | {"taskId": f"t-{next(counter)}"})
            except httpx.TransportError:
                assert done.is_set(), "a request failed before the signal"
                return
            if response.status_code == 200:
                acknowledged.extend(response.json()["event_ids"])
                if len(acknowledged) >= stop_after and not done.is_set():
                    done.set()
                    on_enough()
            else:
                assert response.status_code == 503, response.text

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.wait_for(
            asyncio.gather(*(sender(client) for _ in range(concurrency))), timeout=60
        )
    return acknowledged


async def logged(serve: Serve, text: str, within: float = 20) -> None:
    """Wait until the server's log says ``text``."""
    deadline = time.monotonic() + within
    while text not in serve.log.read_text():
        assert time.monotonic() < deadline, f"the log never said {text!r}"
        await asyncio.sleep(0.02)


class HeldRequest:
    """A callback the server has begun to handle, its body not sent yet: its ``100 Continue``
    says the application is reading it. Raw HTTP/1.1, since httpx does not wait for one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes):
        self.reader, self.writer, self.body = reader, writer, body

    @classmethod
    async def begin(cls, url: str, task_id: str) -> HeldRequest:
        parts = httpx.URL(url)
        assert parts.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", parts.port)
        body = json.dumps(fixture("fotor/upscale-completed") | {"taskId": task_id}).encode()
        head = (
            f"POST {parts.raw_path.decode()} HTTP/1.1\r\nHost: 127.0.0.1:{parts.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        return cls(reader, writer, body)

    async def finish(self) -> tuple[int, bytes]:
        """Send the body; the status and body of the answer."""
        self.writer.write(self.body)
        await self.writer.drain()
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 20)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in header_lines if line)
        content = await self.reader.readexactly(int(headers["content-length"]))
        self.writer.close()
        return int(status_line.split(" ")[1]), content


def test_sigkill_right_after_a_200_loses_nothing(serve: Serve, tmp_path: Path) -> None:
    serve.start()
    url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
    acknowledged = asyncio.run(
        send_until(
            url, concurrency=16, stop_after=150, on_enough=lambda: serve.signal(signal.SIGKILL)
        )
    )
    assert serve.wait() == -signal.SIGKILL
    assert len(acknowledged) >= 150

    serve.start()  # the same database, the same generated URL key
    same_url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
    assert same_url == url.replace(url.split("/hooks/")[0], serve.base_url)
    missing = set(acknowledged) - stored_ids(tmp_path)
    print(f"acknowledged {len(acknowledged)} before SIGKILL; missing after restart: {len(missing)}")
    assert not missing

    again = httpx.post(same_url, json=fixture("fotor/upscale-completed") | {"taskId": "t-0"})
    assert again.json()["duplicate"] is True  # the restarted receiver still knows it


def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(
    serve: Serve, tmp_path: Path
) -> None:
    serve.start()
    url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()

    async def load_then_sigterm() -> tuple[list[str], list[tuple[int, bytes]]]:
        held = [await HeldRequest.begin(url, f"in-flight-{n}") for n in range(8)]
        acknowledged = await send_until(
            url, concurrency=16, stop_after=100, on_enough=lambda: serve.signal(signal.SIGTERM)
        )
        # The server is shutting down, waiting for the held requests, which are still in
        # flight: their bodies come now, and each gets its answer.
        await logged(serve, "Waiting for connections to close")
        return acknowledged, await asyncio.gather(*(request.finish() for request in held))

    acknowledged, answers = asyncio.run(load_then_sigterm())
    assert [status for status, _ in answers] == [200] * 8, answers
    held_ids = [event_id for _, body in answers for event_id in json.loads(body)["event_ids"]]
    assert len(held_ids) == 8
    # uvicorn re-raises the signal once it has shut down cleanly, so supervisors see why it ended.
    assert serve.wait() in (0, -signal.SIGTERM)
    log = serve.log.read_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    assert set(acknowledged) | set(held_ids) <= stored_ids(tmp_path)


def test_start_up_log_masks_tokens(serve: Serve, tmp_path: Path) -> None:
    serve.start()
    url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
    httpx.post(url, json=fixture("fotor/upscale-completed"))
    httpx.post(url + "x", json=fixture("fotor/upscale-completed"))
    serve.stop()
    token = url.rsplit("/", 1)[1]
    log = serve.log.read_text()
    assert "POST /hooks/fotor/<token>" in log
    assert "photohook url SOURCE" in log
    assert token not in log
    assert token[:-1] not in log


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_web_concurrency_runs_that_many_processes_on_one_port(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    env = {"WEB_CONCURRENCY": "2"}
    if engine == "postgresql":
        env["PHOTOHOOK_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    serve = Serve(tmp_path, env=env)
    serve.start()
    try:
        assert serve.process is not None
        processes = _children(serve.process.pid)
        url = run_cli(
            "url", "fotor", "--base-url", serve.base_url, cwd=tmp_path, env=env
        ).stdout.strip()

        async def send() -> list[int]:
            async with httpx.AsyncClient(timeout=10) as client:
                answers = await asyncio.gather(
                    *(
                        client.post(
                            url, json=fixture("fotor/upscale-completed") | {"taskId": f"t{i}"}
                        )
                        for i in range(200)
                    )
                )
            return [a.status_code for a in answers]

        assert asyncio.run(send()) == [200] * 200
        listed = run_cli("events", "--json", "--limit", "1000", cwd=tmp_path, env=env)
        assert len(json.loads(listed.stdout)) == 200
        # uvicorn's supervisor holds the socket; each process serves it (spawned children,
        # plus multiprocessing's resource tracker).
        serving = [
            pid for pid in processes if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(serving) == 2
        serve.signal(signal.SIGTERM)
        assert serve.wait() in (0, -signal.SIGTERM)
        assert not [pid for pid in serving if Path(f"/proc/{pid}").exists()]
    finally:
        serve.stop()


CALLBACKS = 2000 if LONG else 150


MAX_IN_FLIGHT = 4


def test_sigkill_mid_delivery_delivers_every_event_at_least_once(tmp_path: Path) -> None:
    sink = Sink(script=lambda n: Reply(delay=0.02))
    with running(sink.app, lifespan="off") as sink_url:
        (tmp_path / "photohook.toml").write_text(
            "[server]\nallow_private_destinations = true\n"
            f'[destinations.sink]\nurl = "{sink_url}/hook"\ntimeout = "1s"\n'
            f'max_in_flight = {MAX_IN_FLIGHT}\nretry_schedule = ["100ms", "200ms", "500ms"]\n'
            '[[routes]]\nto = ["sink"]\n'
        )
        serve = Serve(tmp_path)
        serve.start()
        try:
            url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
            acknowledged = asyncio.run(send(url, CALLBACKS))
            deadline = time.monotonic() + 30
            while len(sink.received) < CALLBACKS // 4 and time.monotonic() < deadline:
                time.sleep(0.005)
            serve.signal(signal.SIGKILL)
            serve.wait()
            received_at_kill = len(sink.received)
            assert received_at_kill < CALLBACKS, "the kill came after every delivery"

            serve.start()
            deadline = time.monotonic() + 60
            while unfinished(tmp_path) and time.monotonic() < deadline:
                time.sleep(0.2)  # leases of the deliveries in flight at the kill expire first
            serve.signal(signal.SIGTERM)
            serve.wait()
        finally:
            serve.stop()
    missing = set(acknowledged) - set(sink.ids)
    duplicates = len(sink.ids) - len(set(sink.ids))
    print(
        f"\n{len(acknowledged)} events, killed after {received_at_kill} deliveries; "
        f"missing {len(missing)}, duplicate deliveries {duplicates} "
        f"(at most {MAX_IN_FLIGHT} were in flight)"
    )
    assert not missing
    assert duplicates <= MAX_IN_FLIGHT
    listed = json.loads(run_cli("deliveries", "--json", "--limit", "100000", cwd=tmp_path).stdout)
    assert {d["state"] for d in listed} == {"delivered"}
    assert len(listed) == len(acknowledged)


def unfinished(workdir: Path) -> bool:
    listed = json.loads(run_cli("deliveries", "--json", "--limit", "100000", cwd=workdir).stdout)
    return any(d["state"] != "delivered" for d in listed)


async def send(url: str, count: int) -> list[str]:
    body = fixture("fotor/upscale-completed")
    ids: list[str] = []
    semaphore = asyncio.Semaphore(16)

    async def one(client: httpx.AsyncClient, index: int) -> None:
        async with semaphore:
            response = await client.post(url, json=body | {"taskId": f"crash-{index}"})
        assert response.status_code == 200, response.text
        ids.extend(response.json()["event_ids"])

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(one(client, index) for index in range(count)))
    return ids
