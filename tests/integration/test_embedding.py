"""photohook mounted inside a host application, served by the host's uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from receiver import Settings, TokenMaskingFilter, create_app
from receiver.tokens import URLTokens
from tests.helpers import fixture

from .conftest import KEY
from .servers import eventually, running


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _host(app: Starlette) -> Starlette:
    @asynccontextmanager
    async def lifespan(host: Starlette) -> AsyncIterator[None]:
        async with app.router.lifespan_context(app):
            yield

    return Starlette(routes=[Mount("/photohook", app=app)], lifespan=lifespan)


async def test_the_token_masking_filter_keeps_tokens_out_of_the_host_access_log(
    tmp_path: Path, stack: ExitStack
) -> None:
    (tmp_path / "photohook.toml").write_text("")
    settings = Settings.load(
        config_file=tmp_path / "photohook.toml",
        database_url=f"sqlite:///{tmp_path / 'photohook.db'}",
        environ={"PHOTOHOOK_SECRET_KEYS": KEY},
    )
    token = URLTokens([KEY]).token("fotor")
    base_url = stack.enter_context(running(_host(create_app(settings)), access_log=True))
    access = logging.getLogger("uvicorn.access")
    captured = _Lines()
    access.addHandler(captured)
    masking = TokenMaskingFilter()

    async def logged_callback(task_id: str) -> str:
        """The host's access line of a callback."""
        captured.lines.clear()
        body = fixture("fotor/upscale-completed") | {"taskId": task_id}
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{base_url}/photohook/hooks/fotor/{token}", json=body)
        assert answer.status_code == 200, answer.text
        await eventually(lambda: any("/hooks/" in line for line in captured.lines))
        [line] = [line for line in captured.lines if "/hooks/" in line]
        return line

    try:
        # Without the filter, the host's server prints the token: what the filter is for.
        assert token in await logged_callback("before")
        access.addFilter(masking)
        line = await logged_callback("after")
        assert "/photohook/hooks/fotor/<token>" in line and " 200" in line, line
        assert token not in line
    finally:
        access.removeFilter(masking)
        access.removeHandler(captured)
