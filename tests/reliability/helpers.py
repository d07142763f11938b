"""Black-box helpers: photohook as processes, traffic as a provider would send it."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import LONG
from tests.e2e.process import Serve, run_cli
from tests.helpers import fixture
from tests.integration.servers import Sink, running


def size(short: int, long: int) -> int:
    """The short size by default; the full one with PHOTOHOOK_LONG=1."""
    return long if LONG else short


def fotor_body(index: int, status: int = 1, prefix: str = "task") -> dict[str, Any]:
    return fixture("fotor/upscale-completed") | {"taskId": f"{prefix}-{index}", "status": status}


@dataclass
class Traffic:
    acknowledged: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    answers: list[int] = field(default_factory=list)  # each status, in the order answered
    errors: int = 0


async def send_all(
    url: str,
    bodies: list[dict[str, Any]],
    *,
    concurrency: int,
    rate: float | None = None,
    headers: dict[str, str] | None = None,
    traffic: Traffic | None = None,
) -> Traffic:
    """POST every body (``concurrency`` at a time, at most ``rate`` per second); connection
    errors are counted, never retried, as a provider's single attempt would be."""
    traffic = traffic or Traffic()
    pending = iter(bodies)
    started = time.monotonic()
    sent = 0

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal sent
        for body in pending:
            if rate is not None:
                sent += 1
                delay = started + sent / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            try:
                response = await client.post(url, json=body, headers=headers)
            except httpx.TransportError:
                traffic.errors += 1
                continue
            traffic.statuses[response.status_code] += 1
            traffic.answers.append(response.status_code)
            if response.status_code == 200:
                traffic.acknowledged.extend(response.json()["event_ids"])

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=15, limits=limits, trust_env=False) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
    return traffic


def stored_event_ids(workdir: Path, env: dict[str, str] | None = None) -> set[str]:
    result = run_cli("events", "--json", "--limit", "1000000", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    return {event["id"] for event in json.loads(result.stdout)}


def deliveries(workdir: Path, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    result = run_cli("deliveries", "--json", "--limit", "1000000", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    listed: list[dict[str, Any]] = json.loads(result.stdout)
    return listed


def wait_until(check: Any, within: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return bool(check())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def sink_config(sink_url: str, *, max_in_flight: int = 8, extra: str = "") -> str:
    return (
        "[server]\nallow_private_destinations = true\n"
        f'[destinations.sink]\nurl = "{sink_url}/hook"\ntimeout = "2s"\n'
        f"max_in_flight = {max_in_flight}\n"
        'retry_schedule = ["100ms", "200ms", "500ms", "1s", "2s"]\n'
        f"{extra}"
        '[[routes]]\nto = ["sink"]\n'
    )


@contextmanager
def serving_to(workdir: Path, sink: Sink) -> Iterator[str]:
    """``photohook serve`` routing every event to ``sink``, both on loopback; yields the fotor
    callback URL and stops both afterwards."""
    with running(sink.app, lifespan="off") as sink_url:
        (workdir / "photohook.toml").write_text(sink_config(sink_url))
        serve = Serve(workdir)
        serve.start()
        try:
            yield run_cli("url", "fotor", "--base-url", serve.base_url, cwd=workdir).stdout.strip()
        finally:
            serve.stop()


__all__ = ["Serve", "run_cli"]
