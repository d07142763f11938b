"""The two reference servers the benchmark compares photohook with."""

from __future__ import annotations

import asyncio
import json
import os
import time

import aiosqlite
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
