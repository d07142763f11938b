"""JSON responses, serialized with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from receiver.errors import HTTPError


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: HTTPError) -> JSONResponse:
    """The JSON error shape: ``{"ok": false, "error": {"code", "message", "field"?}}``."""
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)
