"""Fetching a result file, against httpx's MockTransport: redirects checked hop by hop, the size
cap, and which failures are worth trying again."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from receiver.errors import FetchFailed
from receiver.keeping.download import Fetcher, shown

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
