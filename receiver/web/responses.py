"""JSON responses, serialized with orjson, and the one place errors become answers.

Every refusal is answered in the JSON error shape, with the status and ``code`` that
:data:`ANSWERS` gives its class (or the nearest class above it)::

    {"ok": false, "error": {"code": "...", "message": "...", "field": "..."}}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from receiver.errors import (
    AlreadyAccepted,
    ClientDisconnected,
    Conflict,
    FileLinkRefused,
    Forbidden,
    Invalid,
    InvalidCallback,
    InvalidJSON,
    Malformed,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Refused,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
    UnknownSource,
    UnsupportedMediaType,
)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True, slots=True)
class Status:
    """The HTTP status and the machine-readable ``code`` a class of error is answered with."""

    status_code: int
    code: str


#: Each error class's answer; a class not listed takes its nearest base class's.
ANSWERS: dict[type[Refused], Status] = {
    Refused: Status(400, "bad_request"),
    Malformed: Status(400, "bad_request"),
    ClientDisconnected: Status(400, "client_disconnected"),
    InvalidJSON: Status(400, "invalid_json"),
    Unauthorized: Status(401, "unauthorized"),
    Forbidden: Status(403, "forbidden"),
    FileLinkRefused: Status(403, "link_refused"),
    NotFound: Status(404, "not_found"),
    UnknownSource: Status(404, "unknown_source"),
    MethodNotAllowed: Status(405, "method_not_allowed"),
    RequestTimeout: Status(408, "request_timeout"),
    Conflict: Status(409, "conflict"),
    AlreadyAccepted: Status(409, "conflict"),
    PayloadTooLarge: Status(413, "body_too_large"),
    UnsupportedMediaType: Status(415, "unsupported_media_type"),
    Invalid: Status(422, "invalid_payload"),
    InvalidCallback: Status(422, "invalid_payload"),
    ServiceUnavailable: Status(503, "unavailable"),
}

#: The class whose default message answers a status Starlette raises itself (404, 405, ...).
_BY_STATUS: dict[int, type[Refused]] = {
    400: Refused,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidCallback,
    503: ServiceUnavailable,
}


def status_of(error: Refused | type[Refused]) -> Status:
    """The answer to ``error`` (an instance or a class)."""
    cls = error if isinstance(error, type) else type(error)
    for base in cls.__mro__:
        found = ANSWERS.get(base)
        if found is not None:
            return found
    raise AssertionError(f"{cls.__name__} is not a Refused error")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An error as it is answered: status, the JSON body's fields, extra headers."""

    status_code: int
    code: str
    message: str
    field: str | None = None
    headers: dict[str, str] | None = None

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"ok": False, "error": error}


def answer(error: Refused) -> ErrorAnswer:
    """How ``error`` is answered."""
    status = status_of(error)
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowed) and error.allowed:
        headers["Allow"] = ", ".join(error.allowed)
    if isinstance(error, ServiceUnavailable) and error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return ErrorAnswer(status.status_code, status.code, error.message, error.field, headers or None)


def for_status(status_code: int, headers: Mapping[str, str] | None = None) -> ErrorAnswer:
    """The answer to an HTTP error Starlette raises itself (no such path, a method not allowed):
    ``status_code``, with the default message of the error class answered so, and ``headers``."""
    found = answer(_BY_STATUS.get(status_code, Refused)())
    return ErrorAnswer(
        status_code, found.code, found.message, headers=dict(headers) if headers else None
    )


def error_response(error: Refused | ErrorAnswer) -> JSONResponse:
    """The JSON error shape: ``{"ok": false, "error": {"code", "message", "field"?}}``."""
    found = error if isinstance(error, ErrorAnswer) else answer(error)
    return JSONResponse(found.body(), status_code=found.status_code, headers=found.headers)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return error_response(exc)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # no such path, say, or a method not allowed
    return error_response(for_status(exc.status_code, exc.headers))


#: Starlette's exception handlers that answer refusals, ours and Starlette's own.
ERROR_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    Refused: _refused,
    HTTPException: _http_exception,
}
