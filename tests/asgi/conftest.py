from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from receiver import Settings, create_app
from receiver.tokens import URLTokens
from tests.helpers import asgi_client

KEY = "test-key-0123456789"
TOKENS = URLTokens([KEY])
CROP_SECRET = "crop-shared-secret-42"

CONFIG = """
[server]
max_body_bytes = 4096
trusted_proxies = ["10.0.0.0/8"]

[sources.fotor]
kind = "fotor"

[sources.fotor-ip]
kind = "fotor"
require = ["token", "ip"]

[sources.cropphoto]
kind = "cropphoto"
secrets = ["env:CROP_SECRET", "older-secret"]

[sources.crop-token]
kind = "cropphoto"
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = tmp_path / "photohook.toml"
    config.write_text(CONFIG)
    return Settings.load(
        config_file=config,
        database_url=f"sqlite:///{tmp_path / 'photohook.db'}",
        environ={"PHOTOHOOK_SECRET_KEYS": KEY, "CROP_SECRET": CROP_SECRET},
    )


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


def hook(source: str) -> str:
    return f"/hooks/{source}/{TOKENS.token(source)}"


@pytest.fixture
def post(client: httpx.AsyncClient) -> Callable[..., Any]:
    async def send(source: str, body: Any, **kwargs: Any) -> httpx.Response:
        return await client.post(hook(source), json=body, **kwargs)

    return send
