"""A network that can fail: a TCP proxy on loopback between photohook and its database."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class Partition:
    """Forwards 127.0.0.1:``port`` to ``upstream``, until :meth:`cut`.

    Cut, the network drops everything without a word, as a partition or a lost host does: no
    byte crosses any open connection, and new connections are accepted but lead nowhere. Nothing
    is closed, so the peers learn of it only by their own timeouts. After :meth:`mend`, new
    connections work again; those that were open stay dead (the database has failed over, say).
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._era = 0  # which connections may still carry bytes: those of the current era
        self._cut = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def __enter__(self) -> Partition:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def cut(self) -> None:
        self._cut = True
        self._era += 1

    def mend(self) -> None:
        self._cut = False

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        era = self._era
        if self._cut:
            return  # accepted, and left unanswered
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        self._writers.add(upstream_writer)
        await asyncio.gather(
            self._pump(reader, upstream_writer, era),
            self._pump(upstream_reader, writer, era),
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, era: int
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if era != self._era:
                    return  # dropped; the connection stays open, and silent
                writer.write(data)
                await writer.drain()
            if era == self._era:
                writer.close()

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
