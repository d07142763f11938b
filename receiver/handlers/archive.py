"""``handlers.archive:save_result``: keep a copy of every result file.

Fotor's result URLs are temporary links, so a completed event's files are downloaded into
``PHOTOHOOK_ARCHIVE_DIR`` (default ``./archive``) as ``<source>/<task_id>/<file>``, each with a
``<file>.json`` beside it recording the URL, size, sha256 and content type. Downloads stream to a
temporary file and are renamed into place when complete; a file already archived from the same URL
is not fetched again, so a retried delivery only fetches what is missing.

Settings (environment): ``PHOTOHOOK_ARCHIVE_DIR``; ``PHOTOHOOK_ARCHIVE_MAX_BYTES`` (default
100 MiB per file); ``PHOTOHOOK_ARCHIVE_ALLOW_PRIVATE=1`` to allow result URLs on loopback or
private addresses (refused by default, like destinations).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from receiver import Event
from receiver.ssrf import check_host

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
MAX_REDIRECTS = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ArchiveError(Exception):
    """A result file could not be archived. Its message names the URL by :func:`shown` only: it
    becomes the delivery's error, which is logged, stored and shown."""


def shown(url: object) -> str:
    """``url`` without userinfo, query or fragment: a presigned URL's signature is a credential."""
    parts = urlsplit(str(url))
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment=""))


def save_result(event: Event) -> None:
    """Download every result URL of a completed event into the archive directory."""
    if event.status != "completed" or not event.result_urls:
        return
    folder = Path(os.environ.get("PHOTOHOOK_ARCHIVE_DIR", "archive"))
    folder = folder / _safe(event.source) / _safe(event.task_id)
    folder.mkdir(parents=True, exist_ok=True)
    limit = int(os.environ.get("PHOTOHOOK_ARCHIVE_MAX_BYTES", DEFAULT_MAX_BYTES))
    allow_private = os.environ.get("PHOTOHOOK_ARCHIVE_ALLOW_PRIVATE") == "1"
    names: set[str] = set()
    with httpx.Client(follow_redirects=False, trust_env=False, timeout=30) as client:
        for index, url in enumerate(event.result_urls):
            name = _file_name(url, index, names)
            target = folder / name
            sidecar = folder / f"{name}.json"
            if sidecar.exists() and target.exists() and _archived_url(sidecar) == url:
                continue
            record = _download(client, url, target, limit, allow_private)
            record["event_id"] = event.id
            _write_atomically(sidecar, orjson.dumps(record, option=orjson.OPT_INDENT_2))


def _download(
    client: httpx.Client, url: str, target: Path, limit: int, allow_private: bool
) -> dict[str, object]:
    current = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        if current.scheme not in ("http", "https"):
            raise ArchiveError(f"not an http(s) URL: {shown(current)}")
        if not allow_private:
            check_host(current.host, current.port or 443)
        with client.stream("GET", current) as response:
            if response.is_redirect:
                current = current.join(response.headers["location"])
                continue
            if response.status_code != 200:
                raise ArchiveError(f"GET {shown(url)} answered {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise ArchiveError(f"{shown(url)} is {declared} bytes, over the limit of {limit}")
            digest = hashlib.sha256()
            size = 0
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as part:
                try:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise ArchiveError(f"{shown(url)} is over the limit of {limit} bytes")
                        digest.update(chunk)
                        part.write(chunk)
                    part.flush()
                    os.fsync(part.fileno())
                except BaseException:
                    Path(part.name).unlink(missing_ok=True)
                    raise
            os.replace(part.name, target)
            return {
                "url": url,
                "file": target.name,
                "size": size,
                "sha256": digest.hexdigest(),
                "content_type": response.headers.get("content-type"),
                "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
    raise ArchiveError(f"{shown(url)} redirects more than {MAX_REDIRECTS} times")


def _archived_url(sidecar: Path) -> object:
    return orjson.loads(sidecar.read_bytes()).get("url")


def _file_name(url: str, index: int, taken: set[str]) -> str:
    name = _safe(PurePosixPath(httpx.URL(url).path).name) or f"result-{index + 1}"
    if name in taken:
        name = f"{index + 1}-{name}"
    taken.add(name)
    return name


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).lstrip(".")[:200]


def _write_atomically(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as part:
        part.write(data)
    os.replace(part.name, path)
