"""Helpers shared by the test tiers."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
FOTOR_IP = "54.212.95.175"


def fixture(name: str) -> dict[str, Any]:
    """A provider fixture, e.g. ``fixture("fotor/upscale-completed")``."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def asgi_client(
    app: Starlette, client: tuple[str, int] = (FOTOR_IP, 40000)
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling ``app`` in process, with its lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://photohook.test") as c:
            yield c
