"""Every error photohook reports, typed by its cause.

Each exception's docstring is its default message. None of them knows HTTP: the web layer
(:mod:`receiver.web.responses`) maps each to a status code and the JSON error body, so that
providers' parsers, operators' actions and the store raise what went wrong, not how to answer it.
"""

from __future__ import annotations

from collections.abc import Sequence


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


class UsageError(PhotohookError):
    """A command-line option has a value the command cannot use."""


class StoreError(PhotohookError):
    """The database could not complete the operation."""


class NoDatabase(StoreError):
    """There is no photohook database here: a command that only reads or changes one does not
    create it (``migrate``, ``serve`` and ``worker`` do)."""


class StoreUnavailable(StoreError):
    """The database could not be reached, or did not answer in time: any operation would have
    failed alike, whatever its data."""


class ProviderError(PhotohookError):
    """The provider's status API gave no answer to use."""


class ProviderUnavailable(ProviderError):
    """The provider could not answer now (an error code, 429, 5xx, a timeout): ask again later."""


class KeyRejected(ProviderError):
    """The provider rejected the API key (401 or 403)."""


class DeniedDestination(PhotohookError):
    """The destination's address is not one photohook may send to."""


class TransformFailed(PhotohookError):
    """The destination's transform raised; the message names its exception."""


class FetchFailed(PhotohookError):
    """A result file could not be fetched into the result store. The message names its URL
    without query or credentials (a presigned URL's signature is one)."""

    def __init__(self, message: str | None = None, *, final: bool = False) -> None:
        super().__init__(message)
        #: Trying again cannot help (refused address, over the size cap, a 4xx answer).
        self.final = final


class ResultStoreError(PhotohookError):
    """The result store could not take, give or delete a file."""


class BrokerRefused(PhotohookError):
    """The broker answered, and refused the message (no such exchange or stream, no queue bound
    for its routing key, a full stream): a failed attempt, retried on the schedule."""


# What a caller (a provider's callback, an operator's request) is refused, and why; the web layer
# answers each with a status and a JSON body, the command line prints its message.
class Refused(PhotohookError):
    """The request could not be handled."""

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        #: The path of the field at fault, when one is (``jobs[0].status``, ``task_id``).
        self.field = field


class Malformed(Refused):
    """The request is malformed."""


class ClientDisconnected(Refused):
    """The client closed the connection before its body arrived."""


class RequestTimeout(Refused):
    """The request took too long to arrive."""


class PayloadTooLarge(Refused):
    """The request body is larger than the configured limit."""


class UnsupportedMediaType(Refused):
    """The request body must be JSON (Content-Type: application/json)."""


class MethodNotAllowed(Refused):
    """The method is not allowed on this path."""

    def __init__(
        self, message: str | None = None, *, field: str | None = None, allowed: Sequence[str] = ()
    ) -> None:
        super().__init__(message, field=field)
        self.allowed = tuple(allowed)


class Invalid(Refused):
    """The request is not valid."""


class InvalidJSON(Invalid):
    """The request body is not valid JSON."""


class InvalidCallback(Invalid):
    """The payload does not match the provider's documented schema."""


class Unauthorized(Refused):
    """The request is not authenticated."""


class Forbidden(Refused):
    """The client address is not allowed."""


class NotFound(Refused):
    """No such resource."""


class FileLinkRefused(Forbidden):
    """This file link was altered or made up, or has expired."""


class KeptFileGone(NotFound):
    """The kept file is gone (deleted by retention, or never kept)."""


class UnknownSource(NotFound):
    """No source of that name is configured."""


class Conflict(Refused):
    """The request conflicts with the resource's current state."""


class AlreadyAccepted(Conflict):
    """A kept rejected request was accepted already (or found a duplicate): it is not run
    again, so that its record keeps what the retry that took it came to."""


class ServiceUnavailable(Refused):
    """photohook cannot store the request right now; retry later."""

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message, field=field)
        #: Seconds after which trying again is likely to succeed, when that is known.
        self.retry_after = retry_after
