"""Reading ``[results]``: where kept result files go, and how they are fetched."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from receiver.config.file import Table
from receiver.retry import RetrySchedule
from receiver.secrets import Secret

STORES = ("local", "s3")
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_LINK_LIFETIME = 7 * 86400.0
MAX_S3_LINK_LIFETIME = 7 * 86400.0  # SigV4 presigned URLs last no longer
#: Downloads are tried again sooner than deliveries: a provider's link may expire within hours.
DEFAULT_RETRY: tuple[float, ...] = (10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)


@dataclass(frozen=True, slots=True)
class S3Config:
    """``[results] store = "s3"``: an S3-compatible bucket (AWS S3, MinIO, R2, ...)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: Secret | None = None  # None: boto3's own lookup (instance role, ...)
    secret_access_key: Secret | None = None


@dataclass(frozen=True, kw_only=True)
class ResultsConfig:
    """``[results]``: the result store and how result files are fetched into it."""

    store: str = "local"
    #: The local store's folder; None: ``results`` beside the SQLite database file (or in the
    #: working directory for PostgreSQL), decided by :meth:`folder`.
    directory: Path | None = None
    s3: S3Config | None = None
    link_lifetime: float = DEFAULT_LINK_LIFETIME  # how long a delivered stable URL works
    max_bytes: int = DEFAULT_MAX_BYTES  # per file
    timeout: float = 300.0  # per download, seconds
    retry: RetrySchedule = field(default_factory=lambda: RetrySchedule(delays=DEFAULT_RETRY))
    max_in_flight: int = 4  # downloads under way at once, per process
    allow_private: bool = False  # fetch from loopback and private addresses
    base_url: str | None = None  # of /files/{token} links; None: as 'photohook url'

    def folder(self, database_url: str) -> Path:
        """The local store's folder for this database."""
        if self.directory is not None:
            return self.directory
        scheme, _, rest = database_url.partition("://")
        if scheme == "sqlite" and rest.startswith("/"):
            return Path(rest[1:]).parent / "results"
        return Path("results")


def read_results(table: Table, *, allow_private: bool) -> ResultsConfig:
    store = table.take_str("store", "local")
    if store not in STORES:
        raise table.error("store", f"unknown store {store!r} (expected local or s3)")
    directory = table.take_optional_str("directory")
    link_lifetime = table.take_duration("link_lifetime", DEFAULT_LINK_LIFETIME)
    if link_lifetime <= 0:
        raise table.error("link_lifetime", "must be more than 0")
    max_bytes = table.take_int("max_bytes", DEFAULT_MAX_BYTES, minimum=1)
    timeout = table.take_duration("timeout", 300.0)
    if timeout <= 0:
        raise table.error("timeout", "must be more than 0")
    schedule = table.take_list("retry_schedule", default=None)
    delays = DEFAULT_RETRY
    if schedule is not None:
        delays = tuple(
            table.duration_of("retry_schedule", index, item) for index, item in enumerate(schedule)
        )
    max_in_flight = table.take_int("max_in_flight", 4, minimum=1)
    private = table.take_bool("allow_private", allow_private)
    base_url = table.take_optional_str("base_url")
    if base_url is not None and urlsplit(base_url).scheme not in ("http", "https"):
        raise table.error("base_url", f"expected an http(s) URL, got {base_url!r}")
    s3 = None
    if store == "s3":
        if directory is not None:
            raise table.error("directory", "the s3 store has no directory; give bucket and prefix")
        s3 = _read_s3(table)
        if link_lifetime > MAX_S3_LINK_LIFETIME:
            raise table.error("link_lifetime", "presigned S3 links last at most 7d")
    table.finish()
    return ResultsConfig(
        store=store,
        directory=Path(directory) if directory else None,
        s3=s3,
        link_lifetime=link_lifetime,
        max_bytes=max_bytes,
        timeout=timeout,
        retry=RetrySchedule(delays=delays),
        max_in_flight=max_in_flight,
        allow_private=private,
        base_url=base_url.rstrip("/") if base_url else None,
    )


def _read_s3(table: Table) -> S3Config:
    bucket = table.take_str("bucket", "")
    if not bucket:
        raise table.error("bucket", 'the s3 store needs a bucket (store = "s3")')
    endpoint_url = table.take_optional_str("endpoint_url")
    if endpoint_url is not None and urlsplit(endpoint_url).scheme not in ("http", "https"):
        raise table.error("endpoint_url", f"expected an http(s) URL, got {endpoint_url!r}")
    keys = table.take_secrets("access_key_id")
    secrets = table.take_secrets("secret_access_key")
    if len(keys) > 1 or len(secrets) > 1:
        raise table.error("access_key_id", "give one access key id and one secret access key")
    if bool(keys) != bool(secrets):
        raise table.error("secret_access_key", "give both access_key_id and secret_access_key")
    return S3Config(
        bucket=bucket,
        prefix=table.take_str("prefix", "").strip("/"),
        endpoint_url=endpoint_url,
        region=table.take_optional_str("region"),
        access_key_id=keys[0] if keys else None,
        secret_access_key=secrets[0] if secrets else None,
    )
