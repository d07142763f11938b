"""Every error photohook reports.

Each exception's docstring is its default message. HTTP errors carry the status code and the
machine-readable ``code`` of the JSON error body::

    {"ok": false, "error": {"code": "...", "message": "...", "field": "..."}}
"""

from __future__ import annotations

from typing import Any, ClassVar


class PhotohookError(Exception):
    """Something went wrong in photohook."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(PhotohookError):
    """The configuration is not valid."""


class ImportStringError(ConfigError):
    """A "module:attribute" import string could not be resolved."""


class StoreError(PhotohookError):
    """The database could not complete the operation."""


class NoDatabase(StoreError):
    """There is no photohook database here: a command that only reads or changes one does not
    create it (``migrate``, ``serve`` and ``worker`` do)."""


class StoreUnavailable(StoreError):
    """The database could not be reached, or did not answer in time: any operation would have
    failed alike, whatever its data."""


class HTTPError(PhotohookError):
    """The request could not be handled."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.headers = headers

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"ok": False, "error": error}


class InvalidJSON(HTTPError):
    """The request body is not valid JSON."""

    code = "invalid_json"


class Unauthorized(HTTPError):
    """The request is not authenticated."""

    status_code = 401
    code = "unauthorized"


class Forbidden(HTTPError):
    """The client address is not allowed."""

    status_code = 403
    code = "forbidden"


class NotFound(HTTPError):
    """No such resource."""

    status_code = 404
    code = "not_found"


class UnknownSource(NotFound):
    """No source of that name is configured."""

    code = "unknown_source"


class MethodNotAllowed(HTTPError):
    """The method is not allowed on this path."""

    status_code = 405
    code = "method_not_allowed"


class Conflict(HTTPError):
    """The request conflicts with the resource's current state."""

    status_code = 409
    code = "conflict"


class RequestTimeout(HTTPError):
    """The request took too long to arrive."""

    status_code = 408
    code = "request_timeout"


class ClientDisconnected(HTTPError):
    """The client closed the connection before its body arrived."""

    code = "client_disconnected"


class PayloadTooLarge(HTTPError):
    """The request body is larger than the configured limit."""

    status_code = 413
    code = "body_too_large"


class UnsupportedMediaType(HTTPError):
    """The request body must be JSON (Content-Type: application/json)."""

    status_code = 415
    code = "unsupported_media_type"


class ValidationFailed(HTTPError):
    """The payload does not match the provider's documented schema."""

    status_code = 422
    code = "invalid_payload"


class ServiceUnavailable(HTTPError):
    """photohook cannot store the request right now; retry later."""

    status_code = 503
    code = "unavailable"


_BY_STATUS: dict[int, type[HTTPError]] = {
    400: HTTPError,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    503: ServiceUnavailable,
}


def for_status(status_code: int) -> type[HTTPError]:
    """The error class that answers with ``status_code`` (for Starlette's own HTTP errors)."""
    return _BY_STATUS.get(status_code, HTTPError)
