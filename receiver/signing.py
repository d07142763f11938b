"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one
space-separated entry per secret while secrets rotate. Secrets are ``whsec_`` and base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_...`` secret; raises ValueError if it is not valid base64."""
    encoded = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a Standard Webhooks secret is 'whsec_' and base64") from None
    if not key:
        raise ValueError("a Standard Webhooks secret cannot be empty")
    return key


def new_secret() -> str:
    """A new random secret, ``whsec_`` and the base64 of 32 bytes (256 bits, HMAC-SHA256's)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,...`` signature."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per key."""
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def verify(
    keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes, header: str, *, now: float
) -> bool:
    """Whether ``header`` carries a valid signature by any key, within the timestamp tolerance."""
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = {sign(key, msg_id, timestamp, body) for key in keys}
    matched = False
    for candidate in header.split():
        for signature in expected:
            matched |= hmac.compare_digest(candidate, signature)
    return matched
