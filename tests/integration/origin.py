"""A provider's file server on loopback, for kept result files: serves PNGs by name, fails
when told to, stops serving (as an expired link does), redirects, and streams large files
without holding them in memory."""

from __future__ import annotations

import hashlib
import struct
import threading
import zlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

BLOCK = bytes(range(256)) * 4096  # 1 MiB, not all zeros


def png(width: int = 4, height: int = 3, colour: bytes = b"\xff\x00\x00") -> bytes:
    """A real PNG image (Chromium must be able to draw it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + colour * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def big_sha256(size: int) -> str:
    """The sha256 of ``/big/{size}``."""
    digest = hashlib.sha256()
    for start in range(0, size, len(BLOCK)):
        digest.update(BLOCK[: min(len(BLOCK), size - start)])
    return digest.hexdigest()


class Origin:
    """``GET /r/{name}``: ``files[name]``; the first ``failures`` requests answer 503; with
    ``serving`` off every request answers 403 (an expired link). ``GET /to/{name}`` redirects
    to ``redirects[name]``; ``GET /big/{size}`` streams ``size`` bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.failures = 0
        self.serving = True
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/r/{name}", self._file),
                Route("/to/{name}", self._redirect),
                Route("/big/{size:int}", self._big),
            ]
        )

    async def _file(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request.url.path)
            failing = self.failures > 0
            self.failures -= failing
        if not self.serving:
            return Response(b"link expired", status_code=403)
        if failing:
            return Response(b"busy", status_code=503)
        name = request.path_params["name"]
        if name not in self.files:
            return Response(b"no such file", status_code=404)
        return Response(self.files[name], media_type="image/png")

    async def _redirect(self, request: Request) -> Response:
        return RedirectResponse(self.redirects[request.path_params["name"]], status_code=302)

    async def _big(self, request: Request) -> Response:
        size: int = request.path_params["size"]

        async def blocks() -> AsyncIterator[bytes]:
            for start in range(0, size, len(BLOCK)):
                yield BLOCK[: min(len(BLOCK), size - start)]

        headers = {"content-length": str(size)}
        return StreamingResponse(blocks(), media_type="image/png", headers=headers)
