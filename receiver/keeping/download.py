"""Fetching a result file: streamed to a temporary file while hashed, capped in size, each hop
of a redirect checked against internal addresses and connected to the address checked (as
deliveries are), so that memory stays flat and a provider's link cannot reach inside."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from receiver.delivery.senders import USER_AGENT, pinned, tls_context
from receiver.errors import DeniedDestination, FetchFailed

MAX_REDIRECTS = 5
CHUNK = 256 * 1024
#: Answers worth trying again: the provider may be down or busy.
_RETRIED = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class Download:
    """A fetched file, in a temporary file of its own until the result store takes it."""

    path: Path
    size: int
    content_type: str | None
    sha256: str


def shown(url: str | httpx.URL) -> str:
    """``url`` without credentials, query or fragment: a presigned URL's signature is a
    credential, and this is what errors, logs and the database say."""
    parts = urlsplit(str(url))
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment=""))


class Fetcher:
    """Downloads result files over one transport, with the limits of ``[results]``."""

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout: float,
        allow_private: bool,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.allow_private = allow_private
        self._transport = transport or httpx.AsyncHTTPTransport(
            verify=tls_context(), trust_env=False
        )

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def fetch(self, url: str, folder: Path) -> Download:
        """Download ``url`` into a new file in ``folder``; raises :class:`FetchFailed` (with
        ``final`` set when trying again cannot help)."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(httpx.URL(url), folder)
        except TimeoutError:
            raise FetchFailed(f"GET {shown(url)} timed out after {self.timeout:g}s") from None
        except DeniedDestination as exc:
            raise FetchFailed(f"GET {shown(url)} refused: {exc}", final=True) from None
        except (httpx.InvalidURL, UnicodeError):  # the URL, or a redirect's Location
            raise FetchFailed(f"GET {shown(url)}: not a valid URL", final=True) from None
        except (httpx.HTTPError, OSError) as exc:
            # httpx's text may carry the URL it was given: name the URL ourselves.
            raise FetchFailed(f"GET {shown(url)} failed: {type(exc).__name__}") from None

    async def _follow(self, url: httpx.URL, folder: Path) -> Download:
        original = url
        for _ in range(MAX_REDIRECTS + 1):
            if url.scheme not in ("http", "https"):
                raise FetchFailed(f"not an http(s) URL: {shown(url)}", final=True)
            headers = {"user-agent": USER_AGENT, "accept-encoding": "identity"}
            target, extensions = (url, {}) if self.allow_private else await pinned(url, headers)
            request = httpx.Request("GET", target, headers=headers, extensions=extensions)
            response = await self._transport.handle_async_request(request)
            response.request = request
            try:
                if response.is_redirect and "location" in response.headers:
                    url = url.join(response.headers["location"])
                    continue
                status = response.status_code
                if status != 200:
                    final = 400 <= status < 500 and status not in _RETRIED
                    raise FetchFailed(f"GET {shown(original)} answered {status}", final=final)
                return await self._save(response, original, folder)
            finally:
                await response.aclose()
        raise FetchFailed(f"{shown(original)} redirects more than {MAX_REDIRECTS} times")

    async def _save(self, response: httpx.Response, url: httpx.URL, folder: Path) -> Download:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_large(url, int(declared))
        digest, size = hashlib.sha256(), 0
        descriptor, name = tempfile.mkstemp(dir=folder, prefix=".part-")
        path = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as part:
                async for chunk in response.aiter_raw(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise self._too_large(url, None)
                    digest.update(chunk)
                    part.write(chunk)
        except BaseException:
            os.unlink(path)
            raise
        content_type = response.headers.get("content-type")
        return Download(path, size, content_type, digest.hexdigest())

    def _too_large(self, url: httpx.URL, size: int | None) -> FetchFailed:
        declared = f" ({size} bytes)" if size is not None else ""
        return FetchFailed(
            f"{shown(url)}{declared} is over [results] max_bytes = {self.max_bytes}", final=True
        )
