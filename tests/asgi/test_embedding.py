"""photohook mounted inside another Starlette application, with a handler given as a callable."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from receiver import Event, Settings, create_app
from receiver.tokens import URLTokens
from tests.helpers import fixture
from tests.integration.servers import eventually

KEY = "embedding-key"


async def test_mounted_with_a_callable_handler(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="photohook.access")
    received: list[Event] = []

    async def remember(event: Event) -> None:
        received.append(event)

    config = tmp_path / "photohook.toml"
    config.write_text('[[routes]]\nstatus = "completed"\nto = ["remember"]\n')
    settings = Settings.load(
        config_file=config,
        database_url=f"sqlite:///{tmp_path / 'embedded.db'}",
        handlers={"remember": remember},
        environ={"PHOTOHOOK_SECRET_KEYS": KEY},
    )
    photohook = create_app(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with photohook.router.lifespan_context(photohook):
            yield

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("the host application")

    host = Starlette(
        routes=[Route("/", home), Mount("/photohook", app=photohook)], lifespan=lifespan
    )
    async with host.router.lifespan_context(host):
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://host.test") as client:
            assert (await client.get("/")).text == "the host application"
            token = URLTokens([KEY]).token("fotor")
            response = await client.post(
                f"/photohook/hooks/fotor/{token}", json=fixture("fotor/upscale-completed")
            )
            assert response.status_code == 200, response.text
            await eventually(lambda: len(received) == 1)
            assert received[0].id == response.json()["event_ids"][0]
            assert (await client.get("/photohook/healthz")).json() == {"ok": True}
            # Below the mount point too, the token is masked in the access lines.
            await client.get(f"/photohook/hooks/fotor/{token}")
    lines = [r.getMessage() for r in caplog.records if r.name == "photohook.access"]
    assert lines[0].startswith("POST /photohook/hooks/fotor/<token> 200 accepted")
    assert any(line.startswith("GET /photohook/hooks/fotor/<token> 405") for line in lines)
    assert token not in caplog.text
