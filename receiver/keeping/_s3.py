"""The S3-compatible result store (AWS S3, MinIO, R2, ...), through boto3 (the ``s3`` extra).

boto3 is synchronous: every call that goes over the network runs in a thread. Uploads are
boto3's managed transfers, multipart for large files, read from the downloaded file, so memory
stays flat whatever the size. Links are presigned GET URLs; their signature is a credential, so
they are never logged or stored.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from receiver.config.results import S3Config
from receiver.errors import ConfigError, ResultStoreError

try:
    import boto3
    from boto3.exceptions import S3UploadFailedError
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ConfigError('[results] store = "s3" needs boto3: install photohook[s3]') from exc

#: SigV4 presigned URLs cannot last longer.
MAX_LINK_LIFETIME = 7 * 86400


class S3Store:
    """Kept files as objects under ``prefix`` in a bucket, linked by presigned URLs."""

    def __init__(self, config: S3Config, *, lifetime: float) -> None:
        self.config = config
        self._lifetime = int(min(lifetime, MAX_LINK_LIFETIME))
        credentials: dict[str, Any] = {}
        if config.access_key_id is not None and config.secret_access_key is not None:
            credentials = {
                "aws_access_key_id": config.access_key_id.reveal(),
                "aws_secret_access_key": config.secret_access_key.reveal(),
            }
        style = "path" if config.endpoint_url else "auto"
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": style},
                retries={"max_attempts": 3, "mode": "standard"},
            ),
            **credentials,
        )

    def _key(self, key: str) -> str:
        return f"{self.config.prefix}/{key}" if self.config.prefix else key

    def incoming(self) -> Path:
        return Path(tempfile.gettempdir())

    async def put(self, source: Path, key: str, content_type: str | None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        try:
            await asyncio.to_thread(
                self._client.upload_file,
                str(source),
                self.config.bucket,
                self._key(key),
                ExtraArgs=extra,
            )
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            # boto3 wraps a client error of an upload in S3UploadFailedError, raised inside it.
            cause = exc.__context__
            said = _said(cause if isinstance(cause, ClientError) else exc)
            raise ResultStoreError(f"cannot upload {key} to the bucket: {said}") from None
        finally:
            await asyncio.to_thread(source.unlink, missing_ok=True)

    def link(self, event_id: str, position: int, key: str) -> str:
        url: str = self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.config.bucket, "Key": self._key(key)},
            ExpiresIn=self._lifetime,
        )
        return url

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(
                self._client.delete_object, Bucket=self.config.bucket, Key=self._key(key)
            )
        except (BotoCoreError, ClientError) as exc:
            raise ResultStoreError(f"cannot delete {key} from the bucket: {_said(exc)}") from None

    async def check(self) -> None:
        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self.config.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise ResultStoreError(
                f"bucket {self.config.bucket!r} cannot be reached: {_said(exc)}"
            ) from None


def _said(exc: Exception) -> str:
    """What went wrong, without the request (a client error's text names the operation and the
    service's code; a presigned URL never appears in it)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')} ({exc.operation_name})"
    return type(exc).__name__
