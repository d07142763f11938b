"""Fetching a result file, against httpx's MockTransport: redirects checked hop by hop, the size
cap, which failures are worth trying again, and a slow disk that must not stall the event loop."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from receiver.errors import FetchFailed, ResultStoreError
from receiver.keeping.download import CHUNK, Fetcher, shown

PUBLIC = "http://93.184.215.14"  # a public address: no name to resolve


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    """A streamed body, as a real transport gives one."""
    for part in parts:
        yield part


def fetcher(handler: httpx.MockTransport, **limits: object) -> Fetcher:
    return Fetcher(
        max_bytes=int(limits.get("max_bytes", 1000)),  # type: ignore[call-overload]
        timeout=5,
        allow_private=bool(limits.get("allow_private", False)),
        transport=handler,
    )


async def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data"})

    with pytest.raises(FetchFailed) as caught:
        await fetcher(httpx.MockTransport(answer)).fetch(f"{PUBLIC}/r.png?sig=x", tmp_path)
    assert caught.value.final
    assert str(caught.value) == (
        f"GET {PUBLIC}/r.png refused: 169.254.169.254 is a link-local address"
    )
    assert asked == [f"{PUBLIC}/r.png?sig=x"]  # the metadata address was never asked
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240


async def test_a_file_is_streamed_hashed_and_typed(tmp_path: Path) -> None:
    data = b"\x89PNG" + b"x" * 500

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/first":
            return httpx.Response(301, headers={"location": "/second"})
        return httpx.Response(200, content=chunks(data), headers={"content-type": "image/png"})

    found = await fetcher(httpx.MockTransport(answer)).fetch(f"{PUBLIC}/first", tmp_path)
    assert found.path.read_bytes() == data and found.path.parent == tmp_path
    assert found.size == len(data) and found.content_type == "image/png"
    assert found.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("status", "final"), [(404, True), (403, True), (429, False), (500, False), (503, False)]
)
async def test_which_answers_are_tried_again(tmp_path: Path, status: int, final: bool) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status))
    with pytest.raises(FetchFailed) as caught:
        await fetcher(transport).fetch(f"{PUBLIC}/r.png", tmp_path)
    assert caught.value.final is final and str(caught.value).endswith(f"answered {status}")


async def test_a_file_larger_than_the_cap_is_cut_off_without_a_declared_size(
    tmp_path: Path,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks(b"x" * 600, b"y" * 600))

    with pytest.raises(FetchFailed, match=r"is over \[results\] max_bytes = 1000") as caught:
        await fetcher(httpx.MockTransport(answer)).fetch(f"{PUBLIC}/r.png", tmp_path)
    assert caught.value.final and not any(tmp_path.iterdir())  # noqa: ASYNC240


async def test_too_many_redirects(tmp_path: Path) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(302, headers={"location": "/again"}))
    with pytest.raises(FetchFailed, match="redirects more than 5 times"):
        await fetcher(transport).fetch(f"{PUBLIC}/r.png", tmp_path)


async def test_a_redirect_to_a_malformed_url_is_final(tmp_path: Path) -> None:
    transport = httpx.MockTransport(
        lambda r: httpx.Response(302, headers={"location": "http://[::1"})
    )
    with pytest.raises(FetchFailed, match="not a valid URL") as caught:
        await fetcher(transport).fetch(f"{PUBLIC}/r.png", tmp_path)
    assert caught.value.final  # else it would be fetched again and again


def test_shown_urls_carry_no_credentials() -> None:
    assert shown("https://user:pw@cdn.example.com/a.png?X-Amz-Signature=abc#f") == (
        "https://cdn.example.com/a.png"
    )


#: How long each write to a slow disk takes: far longer than the event loop may ever stall.
PAUSE = 0.5


class SlowFile(io.BufferedWriter):
    """A file on a disk under writeback throttling: every write blocks its thread a while."""

    def __init__(self, raw: io.FileIO, writing: threading.Event) -> None:
        super().__init__(raw)
        self.writing = writing

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writing.set()
        time.sleep(PAUSE)
        return super().write(data)


@pytest.fixture
def slow_disk(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """A slow disk under the downloads; the event is set once a write has begun."""
    writing = threading.Event()
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: SlowFile(io.FileIO(fd, mode), writing))
    return writing


async def ticking(ticks: list[float]) -> None:
    """Notes the time at each turn of the event loop, as a callback waiting on it would see it."""
    while True:
        await asyncio.sleep(0.01)
        ticks.append(time.monotonic())


@pytest.mark.usefixtures("slow_disk")
async def test_a_slow_disk_does_not_stall_the_event_loop(tmp_path: Path) -> None:
    data = [bytes([n]) * CHUNK for n in range(3)]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=chunks(*data)))
    ticks = [time.monotonic()]
    ticker = asyncio.create_task(ticking(ticks))
    try:
        found = await fetcher(transport, max_bytes=10 * CHUNK).fetch(f"{PUBLIC}/r.png", tmp_path)
    finally:
        ticker.cancel()
    ticks.append(time.monotonic())
    stall = max(later - earlier for earlier, later in itertools.pairwise(ticks))
    assert stall < PAUSE / 2, f"the event loop stalled for {stall:.2f}s"  # 3 writes: 1.5 s
    assert found.path.read_bytes() == b"".join(data)  # written whole, in order
    assert found.sha256 == hashlib.sha256(b"".join(data)).hexdigest()


async def test_a_download_cancelled_midway_leaves_no_part_behind(
    tmp_path: Path, slow_disk: threading.Event
) -> None:
    forever = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"x" * CHUNK
        await forever.wait()
        yield b"never"

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=stalled()))
    fetch = asyncio.create_task(
        fetcher(transport, max_bytes=10 * CHUNK).fetch(f"{PUBLIC}/r.png", tmp_path)
    )
    assert await asyncio.to_thread(slow_disk.wait, 10)
    fetch.cancel()  # while the first chunk is being written, or just after
    with pytest.raises(asyncio.CancelledError):
        await fetch
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240


class FullFile(io.BufferedWriter):
    """A file on a full disk."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


async def test_a_full_disk_is_the_stores_fault_not_the_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullFile(io.FileIO(fd, mode)))
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=chunks(b"x")))
    with pytest.raises(ResultStoreError, match="No space left on device"):
        await fetcher(transport).fetch(f"{PUBLIC}/r.png", tmp_path)
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240


async def test_a_download_is_on_disk_before_it_is_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[bytes] = []
    sync = os.fsync

    def recording(descriptor: int) -> None:
        sync(descriptor)
        synced.append(Path(f"/proc/self/fd/{descriptor}").resolve().read_bytes())

    monkeypatch.setattr(os, "fsync", recording)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=chunks(b"ab", b"c"))
    )
    found = await fetcher(transport).fetch(f"{PUBLIC}/r.png", tmp_path)
    assert synced == [b"abc"] and found.path.read_bytes() == b"abc"
