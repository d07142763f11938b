"""Fetching a result file: streamed to a temporary file while hashed, capped in size, each hop
of a redirect checked against internal addresses and connected to the address checked (as
deliveries are), so that memory stays flat and a provider's link cannot reach inside. The file is
written in threads of the fetcher's own, so that a slow disk never stalls the event loop, which
also answers the providers' callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

import httpx

from receiver.delivery.senders import USER_AGENT, pinned, tls_context
from receiver.errors import DeniedDestination, FetchFailed, ResultStoreError

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
    """Downloads result files over one transport, with the limits of ``[results]``; their files
    are written in up to ``writers`` threads (one per download under way keeps them apart)."""

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout: float,
        allow_private: bool,
        transport: httpx.AsyncBaseTransport | None = None,
        writers: int = 4,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.allow_private = allow_private
        self._transport = transport or httpx.AsyncHTTPTransport(
            verify=tls_context(), trust_env=False
        )
        # Not the loop's default executor: a disk that hangs must not take the threads that
        # resolve names and move kept files.
        self._writers = ThreadPoolExecutor(writers, thread_name_prefix="photohook-download")

    async def aclose(self) -> None:
        self._writers.shutdown(wait=False)  # what is queued (a part's removal) still runs
        await self._transport.aclose()

    async def fetch(self, url: str, folder: Path) -> Download:
        """Download ``url`` into a new file in ``folder``; raises :class:`FetchFailed` (with
        ``final`` set when trying again cannot help), or :class:`ResultStoreError` when the file
        cannot be written."""
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
        part = _Part(self._writers, folder)
        try:
            async for chunk in response.aiter_raw(CHUNK):
                if part.size + len(chunk) > self.max_bytes:
                    raise self._too_large(url, None)
                await part.add(chunk)
            path, sha256 = await part.close()
        except BaseException:
            await part.discard()
            raise
        content_type = response.headers.get("content-type")
        return Download(path, part.size, content_type, sha256)

    def _too_large(self, url: httpx.URL, size: int | None) -> FetchFailed:
        declared = f" ({size} bytes)" if size is not None else ""
        return FetchFailed(
            f"{shown(url)}{declared} is over [results] max_bytes = {self.max_bytes}", final=True
        )


class _Part:
    """A download's temporary file, opened, hashed, written and closed in the fetcher's threads,
    one step at a time, each after the one before: while a chunk goes to disk the next is read,
    so at most two are held. Hashing goes with the writes: it is work per byte too, and hashlib
    lets go of the GIL for it, so the event loop only reads."""

    def __init__(self, writers: Executor, folder: Path) -> None:
        self._writers = writers
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._digest = hashlib.sha256()
        self.size = 0
        self._last: Future[None] = writers.submit(self._open, folder)

    async def add(self, chunk: bytes) -> None:
        await self._then(self._write, chunk)
        self.size += len(chunk)

    async def close(self) -> tuple[Path, str]:
        """The file's path and SHA-256, once written whole and closed."""
        await self._then(self._close)
        await self._done()
        assert self._path is not None
        return self._path, self._digest.hexdigest()

    async def discard(self) -> None:
        """Close and remove the file, once the step under way is done; it is removed even when
        this is cancelled, as the removal is queued in the threads, not here."""
        removal = self._writers.submit(self._remove, self._last)
        await asyncio.shield(asyncio.wrap_future(removal))

    async def _then(self, step: Callable[..., None], *args: object) -> None:
        await self._done()
        self._last = self._writers.submit(step, *args)

    async def _done(self) -> None:
        """Wait for the step under way; raises what it raised. A disk that fails (full, gone) is
        photohook's fault, not the provider's: it must not use up the file's fetch schedule."""
        try:
            await asyncio.wrap_future(self._last)
        except OSError as exc:
            raise ResultStoreError(f"cannot write the download: {exc.strerror or exc}") from None

    def _open(self, folder: Path) -> None:
        descriptor, name = tempfile.mkstemp(dir=folder, prefix=".part-")
        self._path = Path(name)
        self._file = os.fdopen(descriptor, "wb")

    def _write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._digest.update(chunk)
        self._file.write(chunk)

    def _close(self) -> None:
        """Flushed to disk before the file is kept and recorded so: a power cut must not leave
        a file recorded as kept, with its sha256, that is cut short."""
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def _remove(self, last: Future[None]) -> None:
        wait([last])
        if self._file is not None:
            with contextlib.suppress(OSError):  # a failing disk; the file goes all the same
                self._file.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)
