from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver import Settings, create_app
from receiver.store import DeliveryQuery, Store, open_store
from receiver.tokens import URLTokens
from tests.helpers import fixture

from .servers import Sink, running

KEY = "integration-key"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Photohook:
    """photohook under uvicorn on loopback, with a reader on its database."""

    def __init__(self, base_url: str, store: Store) -> None:
        self.base_url = base_url
        self.store = store
        self.hook = f"{base_url}/hooks/fotor/{URLTokens([KEY]).token('fotor')}"

    async def send(self, body: dict[str, Any] | None = None, **changes: Any) -> list[str]:
        body = (body or fixture("fotor/upscale-completed")) | changes
        async with httpx.AsyncClient() as client:
            response = await client.post(self.hook, json=body)
        assert response.status_code == 200, response.text
        ids: list[str] = response.json()["event_ids"]
        return ids

    async def deliveries(self, **filters: Any) -> list[Any]:
        return await self.store.list_deliveries(DeliveryQuery(**filters))

    async def states(self) -> dict[str, str]:
        return {d.destination: d.state for d in await self.deliveries()}

    async def all_in(self, state: str, count: int) -> bool:
        """Whether there are ``count`` deliveries, all in ``state``."""
        found = await self.deliveries()
        return len(found) == count and all(d.state == state for d in found)

    async def settled(self, count: int) -> bool:
        """Whether there are ``count`` deliveries, all in a final state."""
        found = await self.deliveries()
        final = ("delivered", "skipped", "dead")
        return len(found) == count and all(d.state in final for d in found)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as servers:
        yield servers


@pytest.fixture
def sink_url(stack: ExitStack) -> Callable[[Sink], str]:
    def start(sink: Sink) -> str:
        return stack.enter_context(running(sink.app, lifespan="off"))

    return start


@pytest.fixture
def photohook_database(tmp_path: Path) -> str:
    """The database photohook runs on: SQLite (a test module may ask for both engines)."""
    return f"sqlite:///{tmp_path / 'photohook.db'}"


@pytest.fixture
async def photohook(
    tmp_path: Path, stack: ExitStack, photohook_database: str
) -> AsyncIterator[Callable[..., Any]]:
    """Start photohook with a config (sources default; private destinations allowed unless
    ``allow_private=False``; ``loop`` is uvicorn's event loop)."""
    stores: list[Store] = []

    async def start(
        config: str,
        environ: dict[str, str] | None = None,
        *,
        allow_private: bool = True,
        loop: str = "auto",
        **load: Any,
    ) -> Photohook:
        path = tmp_path / "photohook.toml"
        server = "[server]\nallow_private_destinations = true\n" if allow_private else ""
        path.write_text(server + config)
        settings = Settings.load(
            config_file=path,
            database_url=photohook_database,
            environ={"PHOTOHOOK_SECRET_KEYS": KEY, **(environ or {})},
            **load,
        )
        base_url = stack.enter_context(running(create_app(settings), loop=loop))
        store = open_store(settings.database_url)
        await store.open()
        stores.append(store)
        return Photohook(base_url, store)

    yield start
    for store in stores:
        await store.close()
