"""Stable links to kept files in the local store: ``/files/{token}``, the token an itsdangerous
timed signature of the file's (event id, position), so that it cannot be made up, altered or
used after ``[results] link_lifetime``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from itsdangerous import BadSignature, URLSafeTimedSerializer

from receiver.errors import FileLinkRefused

SALT = "photohook.kept-file"


class FileLinks:
    """Signs and checks file tokens with the keys of URL tokens, given newest first."""

    def __init__(self, keys: Sequence[str], *, base_url: str, lifetime: float) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        # itsdangerous signs with the last key and accepts every one.
        self._serializer = URLSafeTimedSerializer(
            list(reversed(keys)), salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )
        self._base_url = base_url.rstrip("/")
        self.lifetime = lifetime

    def token(self, event_id: str, position: int) -> str:
        return self._serializer.dumps([event_id, position])

    def url(self, event_id: str, position: int) -> str:
        return f"{self._base_url}/files/{self.token(event_id, position)}"

    def check(self, token: str) -> tuple[str, int]:
        """The (event id, position) a token names; raises :class:`FileLinkRefused` when it was
        altered or made up, or has expired."""
        try:
            found = self._serializer.loads(token, max_age=round(self.lifetime))
        except BadSignature:  # SignatureExpired is one too
            raise FileLinkRefused() from None
        match found:
            case [str(event_id), int(position)]:
                return event_id, position
        raise FileLinkRefused()
