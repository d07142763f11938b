"""SIGKILL ``photohook serve`` while it delivers: every routed event still arrives."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx

from tests.conftest import LONG
from tests.helpers import fixture
from tests.integration.servers import Reply, Sink, running

from .process import Serve, run_cli

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
