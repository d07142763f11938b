"""The two reference servers the benchmark compares photohook with."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import aiosqlite
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

OK = b'{"ok":true}'


async def _bare(request: Request) -> Response:
    await request.body()
    return Response(OK, media_type="application/json")


#: (a) The ceiling: read the body, answer 200.
bare = Starlette(routes=[Route("/hooks/{source}/{token}", _bare, methods=["POST"])])

_db: aiosqlite.Connection | None = None
_lock = asyncio.Lock()


async def _naive(request: Request) -> Response:
    global _db
    body = await request.body()
    async with _lock:
        if _db is None:
            _db = await aiosqlite.connect(os.environ.get("BENCH_NAIVE_DB", "naive.db"))
            await _db.execute("PRAGMA journal_mode = WAL")
            await _db.execute("PRAGMA synchronous = FULL")
            await _db.execute("CREATE TABLE IF NOT EXISTS callbacks (body BLOB NOT NULL)")
        await _db.execute("INSERT INTO callbacks (body) VALUES (?)", (body,))
        await _db.commit()
    return Response(OK, media_type="application/json")


#: (b) What most people write by hand: one INSERT and COMMIT per request, under a lock.
naive = Starlette(routes=[Route("/hooks/{source}/{token}", _naive, methods=["POST"])])


class _GroupCommit:
    """(f) Durable group commit and nothing else, answered as plain ASGI as photohook answers
    callbacks: each body waits for the COMMIT (WAL, ``synchronous=FULL``) of the batch it joined;
    one ``executemany`` and one COMMIT per batch, in a thread of its own. No parsing, checking,
    ids, logging or metrics: what durability alone costs, set beside (a)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="group-commit")
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if scope["method"] == "POST":
            future = asyncio.get_running_loop().create_future()
            self._pending.append((b"".join(chunks), future))
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write())
            await future
        headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": OK})

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await loop.run_in_executor(self._executor, self._commit, [(b,) for b, _ in batch])
            except Exception as exc:  # each request of the batch fails with it
                for _, future in batch:
                    future.set_exception(exc)
            else:
                for _, future in batch:
                    future.set_result(None)

    def _commit(self, rows: list[tuple[bytes]]) -> None:
        if self._db is None:
            path = os.environ.get("BENCH_GROUP_DB", "group.db")
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS callbacks (body BLOB NOT NULL)")
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("INSERT INTO callbacks (body) VALUES (?)", rows)
        self._db.execute("COMMIT")


group_commit = _GroupCommit()

received = 0


async def _sink(request: Request) -> Response:
    global received
    await request.body()
    received += 1
    return Response(OK, media_type="application/json")


async def _count(request: Request) -> Response:
    return Response(str(received).encode())


#: The delivery sink: answers 200 and counts.
sink = Starlette(
    routes=[Route("/hook", _sink, methods=["POST"]), Route("/count", _count, methods=["GET"])]
)


arrivals: dict[str, float] = {}


async def _latency_sink(request: Request) -> Response:
    body = await request.json()
    arrivals[body["task_id"]] = time.time()
    return Response(OK, media_type="application/json")


async def _arrivals(request: Request) -> Response:
    return Response(json.dumps(arrivals).encode(), media_type="application/json")


#: The latency sink: records when each task's delivery arrived (wall clock).
latency_sink = Starlette(
    routes=[
        Route("/hook", _latency_sink, methods=["POST"]),
        Route("/arrivals", _arrivals, methods=["GET"]),
    ]
)
