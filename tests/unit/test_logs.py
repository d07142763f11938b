from __future__ import annotations

import io
import logging

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from receiver.logs import JSONFormatter, RequestLog, configure_logging
from tests.helpers import asgi_client


async def test_json_lines_carry_the_request_id(monkeypatch: object) -> None:
    stream = io.StringIO()
    configure_logging("info", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler.formatter, JSONFormatter)
    handler.setStream(stream)  # type: ignore[attr-defined]

    async def hello(request: object) -> PlainTextResponse:
        logging.getLogger("photohook.test").info("inside the request")
        return PlainTextResponse("hi")

    app = Starlette(
        routes=[Route("/hooks/fotor/{token}", hello)], middleware=[Middleware(RequestLog)]
    )
    try:
        async with asgi_client(app) as client:
            response = await client.get("/hooks/fotor/SECRET-TOKEN-VALUE")
    finally:
        logging.getLogger().handlers.clear()
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    inside = next(line for line in lines if line["message"] == "inside the request")
    access = next(line for line in lines if line["logger"] == "photohook.access")
    assert inside["request_id"] == access["request_id"] == response.headers["x-request-id"]
    assert access["message"].startswith("GET /hooks/fotor/<token> 200")
    assert "SECRET-TOKEN-VALUE" not in stream.getvalue()
