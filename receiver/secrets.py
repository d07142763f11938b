"""A string that never prints itself."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping


class Secret:
    """A secret value that prints as ``**********``; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: bytes | str) -> bool:
        """Constant-time comparison with ``candidate``."""
        if isinstance(candidate, str):
            candidate = candidate.encode()
        return hmac.compare_digest(self._value.encode(), candidate)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


class UnsetSecret(Secret):
    """An ``env:NAME`` secret whose variable is unset, read by a command that neither signs nor
    delivers (``events``, ``url``, ...): the operator's shell need not hold the service's
    secrets. It matches nothing, and revealing it raises ``LookupError`` naming the variable."""

    __slots__ = ("variable",)

    def __init__(self, variable: str) -> None:
        super().__init__("")
        self.variable = variable

    def reveal(self) -> str:
        raise LookupError(f"environment variable {self.variable} is not set")

    def matches(self, candidate: bytes | str) -> bool:
        return False


def resolve_secret(
    value: str, environ: Mapping[str, str] = os.environ, *, strict: bool = True
) -> Secret:
    """A literal, or ``env:NAME`` for the value of the environment variable NAME.

    Raises ``LookupError`` naming the variable when it is unset or empty (unless not ``strict``:
    then an :class:`UnsetSecret`), ``ValueError`` for an empty literal.
    """
    if value.startswith("env:"):
        name = value[4:]
        resolved = environ.get(name, "")
        if not resolved and not strict and name:
            return UnsetSecret(name)
        if not resolved:
            raise LookupError(f"environment variable {name} is not set")
        return Secret(resolved)
    if not value:
        raise ValueError("a secret cannot be empty")
    return Secret(value)
