"""Reading a callback's request: the few headers ingest needs, in one pass, and the body,
refused as soon as it is over the limit."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Receive

from receiver.errors import ClientDisconnected, Malformed, PayloadTooLarge
from receiver.web.auth import SECRET_HEADER

_SECRET_HEADER = SECRET_HEADER.encode()


class RequestHeaders:
    """The few request headers ingest reads, found in one pass (the first of each name)."""

    __slots__ = (
        "content_encoding",
        "content_length",
        "content_type",
        "forwarded_for",
        "secret",
    )

    def __init__(self, raw: Iterable[tuple[bytes, bytes]], *, forwarded: bool) -> None:
        self.content_type: str | None = None
        self.content_encoding: str | None = None
        self.content_length: str | None = None
        self.secret: str | None = None
        self.forwarded_for: list[str] = []
        for name, value in raw:
            if name == b"content-type":
                self.content_type = self.content_type or value.decode("latin-1")
            elif name == b"content-length":
                self.content_length = self.content_length or value.decode("latin-1")
            elif name == b"content-encoding":
                self.content_encoding = self.content_encoding or value.decode("latin-1")
            elif name == _SECRET_HEADER:
                self.secret = self.secret if self.secret is not None else value.decode("latin-1")
            elif forwarded and name == b"x-forwarded-for":
                self.forwarded_for.append(value.decode("latin-1"))


async def read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The whole body; ``declared`` is its Content-Length, if given."""
    if declared is not None:
        if not declared.isdigit():
            raise Malformed("Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
