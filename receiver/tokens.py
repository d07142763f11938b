"""URL tokens: the secret part of a source's callback URL, ``/hooks/{source}/{token}``.

A token is an HMAC-SHA256 of the source name (itsdangerous, salted), so it is bound to that source
and cannot be guessed without a key. Keys rotate: the newest key mints tokens and every key is
accepted until it is removed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from itsdangerous import Signer

SALT = "photohook.hook-url"


def generate_key() -> str:
    """A new random key for ``PHOTOHOOK_SECRET_KEYS``."""
    return secrets.token_urlsafe(32)


class URLTokens:
    """Mints and checks the URL tokens of sources, with keys given newest first."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._signers = [Signer(key, salt=SALT, digest_method=hashlib.sha256) for key in keys]
        self._accepted: dict[str, tuple[bytes, ...]] = {}

    def token(self, source: str) -> str:
        """The token for ``source`` under the newest key."""
        return self._signers[0].get_signature(source).decode("ascii")

    def verify(self, source: str, token: str) -> bool:
        """Whether ``token`` is the token of ``source`` under any key, compared in constant time.

        The comparison is with each key's canonical token, so a token with characters added or
        removed never passes (itsdangerous' own decoder would skip characters it does not know).
        """
        accepted = self._accepted.get(source)
        if accepted is None:
            accepted = tuple(signer.get_signature(source) for signer in self._signers)
            self._accepted[source] = accepted
        candidate = token.encode("utf-8", "surrogateescape")
        matched = False
        for expected in accepted:
            matched |= hmac.compare_digest(expected, candidate)
        return matched
