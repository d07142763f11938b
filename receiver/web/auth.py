"""Authenticating a callback against the checks its source requires: token, ip, secret."""

from __future__ import annotations

from receiver.clientaddr import AddressSet
from receiver.config.sources import SourceConfig
from receiver.errors import Forbidden, Unauthorized
from receiver.tokens import URLTokens
from receiver.types import IPAddress

SECRET_HEADER = "x-webhook-secret"  # noqa: S105 (a header name)


class SourceAuth:
    """The checks of one source, ready to run on each request."""

    __slots__ = ("_allow_ips", "_checks", "_name", "_secrets", "_tokens")

    def __init__(self, source: SourceConfig, tokens: URLTokens) -> None:
        self._name = source.name
        self._checks = source.require
        self._allow_ips: AddressSet = source.allow_ips
        self._secrets = source.secrets
        self._tokens = tokens

    def check(self, *, token: str | None, client: IPAddress | None, secret: str | None) -> None:
        """Raise Forbidden or Unauthorized, naming the check, unless every required check passes."""
        checks = self._checks
        if "ip" in checks:
            if client is None:
                raise Forbidden("ip check failed: the client address is unknown")
            if client not in self._allow_ips:
                raise Forbidden(f"ip check failed: {client} is not in allow_ips of '{self._name}'")
        if "token" in checks:
            if not token:
                raise Unauthorized("token check failed: the URL has no token")
            if not self._tokens.verify(self._name, token):
                raise Unauthorized(f"token check failed: not a token of source '{self._name}'")
        if "secret" in checks:
            if secret is None:
                raise Unauthorized("secret check failed: the X-WEBHOOK-SECRET header is missing")
            matched = False
            for candidate in self._secrets:
                matched |= candidate.matches(secret.encode("utf-8", "surrogateescape"))
            if not matched:
                raise Unauthorized("secret check failed: X-WEBHOOK-SECRET does not match")
