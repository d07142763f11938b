"""The dependencies' internals that photohook relies on, each fenced in one module with an upper
version bound in pyproject.toml: when a new release changes them, these fail before users do."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http import httptools_impl
from uvicorn.server import ServerState

from receiver.web._protocol import GuardedHttpToolsProtocol


def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_uvicorns_httptools_protocol_has_the_hooks_the_header_limits_override() -> None:
    # receiver.web._protocol subclasses this private class of uvicorn's.
    protocol = httptools_impl.HttpToolsProtocol
    assert _parameters(protocol.__init__)[:4] == ["self", "config", "server_state", "app_state"]
    hooks = {
        "connection_made": ["self", "transport"],
        "connection_lost": ["self", "exc"],
        "on_message_begin": ["self"],
        "on_header": ["self", "name", "value"],
        "on_headers_complete": ["self"],
    }
    for name, parameters in hooks.items():
        assert _parameters(vars(protocol)[name]) == parameters, name
    source = inspect.getsource(protocol)
    # httptools calls the parser's callbacks on the protocol itself, so overrides are seen; the
    # loop and the transport are the attributes the limits use.
    assert "httptools.HttpRequestParser(self)" in source
    assert "self.loop = " in source
    assert "self.transport = transport" in source


class _Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return {"peername": ("127.0.0.1", 1234), "sockname": ("127.0.0.1", 80)}.get(name)

    def set_write_buffer_limits(self, *args: Any) -> None:
        pass


def _protocol(header_timeout: float = 10.0) -> tuple[GuardedHttpToolsProtocol, _Transport]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the application must not see this request")

    config = uvicorn.Config(app, log_config=None, lifespan="off")
    config.load()
    protocol = GuardedHttpToolsProtocol(
        config=config, server_state=ServerState(), app_state={}, header_timeout=header_timeout
    )
    transport = _Transport()
    protocol.connection_made(cast(asyncio.Transport, transport))
    return protocol, transport


async def test_headers_over_the_limit_are_refused_through_uvicorns_parser() -> None:
    protocol, transport = _protocol()
    protocol.data_received(b"POST /hooks/x HTTP/1.1\r\nx-big: " + b"a" * 70_000 + b"\r\n\r\n")
    await asyncio.sleep(0)
    assert transport.written.startswith(b"HTTP/1.1 431 ")
    assert transport.closed
    protocol.connection_lost(None)


async def test_headers_that_take_too_long_are_refused_on_uvicorns_loop() -> None:
    protocol, transport = _protocol(header_timeout=0.05)
    protocol.data_received(b"POST /hooks/x HTTP/1.1\r\nhost: x\r\n")
    await asyncio.sleep(0.2)
    assert transport.written.startswith(b"HTTP/1.1 408 ")
    assert transport.closed
    protocol.connection_lost(None)
