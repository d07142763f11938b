"""Load: wrk (Debian's package) when installed, else a built-in asyncio HTTP/1.1 generator."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# A Fotor-shaped callback of about 400 bytes; %s is the unique task id.
BODY = (
    '{"taskId":"%s","status":1,"businessId":"order-20261121-0042","type":"upscale",'
    '"resultUrl":"https://cdn.example.com/results/6cf0082eba5044f1a9495e0eaf5e35ca.png",'
    '"note":"' + "x" * 150 + '"}'
)
WRK_SCRIPT = """
counter = 0
local prefix = "%s-"
request = function()
  counter = counter + 1
  local body = string.format('%s', prefix .. counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def run(url: str, *, seconds: float, connections: int) -> Load:
    if shutil.which("wrk"):
        return _wrk(url, seconds, connections)
    return asyncio.run(_builtin(url, seconds, connections))


def _wrk(url: str, seconds: float, connections: int) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        # wrk's Lua is not seeded: the prefix comes from here, so that no two runs share task ids.
        script.write(WRK_SCRIPT % (secrets.token_hex(6), BODY))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(script.name).unlink()

    def latency(percentile: str) -> float:
        match = re.search(rf"{percentile}%\s+([\d.]+)(us|ms|s)", out)
        assert match, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]
        return float(match[1]) * scale

    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    elapsed = re.search(r"requests in ([\d.]+)(ms|s|m)", out)
    assert elapsed
    duration = float(elapsed[1]) * {"ms": 0.001, "s": 1.0, "m": 60.0}[elapsed[2]]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Load(
        requests, duration, latency("50"), latency("99"), int(errors[1]) if errors else 0, "wrk"
    )


async def _builtin(url: str, seconds: float, connections: int) -> Load:
    parts = urlsplit(url)
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.monotonic() + seconds
    prefix = f"{time.time_ns()}-"

    async def connection() -> None:
        nonlocal counter, errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        while time.monotonic() < deadline:
            counter += 1
            body = (BODY % f"{prefix}{counter}").encode()
            head = (
                f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return Load(
        len(latencies),
        elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
        errors,
        "built-in",
    )


async def paced(url: str, *, rate: float, seconds: float, connections: int) -> dict[str, float]:
    """Send ``rate`` callbacks a second for ``seconds``; when each task was acknowledged (wall
    clock, for comparing with another process's record of arrival)."""
    parts = urlsplit(url)
    acknowledged: dict[str, float] = {}
    total = int(rate * seconds)
    started = time.monotonic()
    next_index = 0
    prefix = f"paced-{time.time_ns()}-"

    async def connection() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        while next_index < total:
            index = next_index
            next_index += 1
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task_id = f"{prefix}{index}"
            body = (BODY % task_id).encode()
            writer.write(
                (
                    f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if status_line.startswith(b"HTTP/1.1 200"):
                acknowledged[task_id] = time.time()
        writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return acknowledged
