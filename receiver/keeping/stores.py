"""Result stores: where kept files go. A local folder (the default) or an S3-compatible bucket
(:mod:`._s3`); each takes a downloaded file, gives a stable link to it and deletes it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import urlsplit

from receiver.config.results import ResultsConfig
from receiver.config.settings import Settings
from receiver.errors import ResultStoreError
from receiver.keeping.links import FileLinks
from receiver.store import Keeping, Meta

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ResultStore(Protocol):
    """Where kept files go."""

    async def put(self, source: Path, key: str, content_type: str | None) -> None:
        """Take the downloaded file at ``source`` (it is moved or deleted) as ``key``."""

    def link(self, event_id: str, position: int, key: str) -> str:
        """A stable URL of the kept file, valid for ``[results] link_lifetime``."""

    async def delete(self, key: str) -> None:
        """Delete the kept file (nothing to delete is no error)."""

    async def check(self) -> None:
        """Raise :class:`ResultStoreError` unless the store can take files now."""

    def incoming(self) -> Path:
        """A folder for downloads under way (on the local store's file system, for a rename)."""


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a file renamed into it) to disk."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def storage_key(event_id: str, position: int, url: str) -> str:
    """Where a file is kept: ``<event id>/<position>-<its name in the URL>``, the same whoever
    fetches it, so that a fetch done twice leaves one copy."""
    name = _UNSAFE.sub("_", PurePosixPath(urlsplit(url).path).name).lstrip(".")[:120]
    return f"{event_id}/{position}-{name or 'result'}"


class LocalStore:
    """Kept files in a folder, linked as ``/files/{token}`` (signed, expiring)."""

    def __init__(self, folder: Path, links: FileLinks | None) -> None:
        self.folder = folder.absolute()
        self.links = links

    def path(self, key: str) -> Path:
        """The file of ``key``, never outside the folder."""
        found = (self.folder / key).resolve()
        if not found.is_relative_to(self.folder.resolve()):
            raise ResultStoreError(f"{key!r} is not a key of this store")
        return found

    def incoming(self) -> Path:
        folder = self.folder / ".incoming"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    async def put(self, source: Path, key: str, content_type: str | None) -> None:
        await asyncio.to_thread(self._move, source, key)

    def _move(self, source: Path, key: str) -> None:
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            _sync_folder(target.parent)  # the rename too must outlive a power cut
        except OSError as exc:
            source.unlink(missing_ok=True)
            raise ResultStoreError(f"cannot keep {key}: {exc.strerror or exc}") from None

    def link(self, event_id: str, position: int, key: str) -> str:
        if self.links is None:
            raise ResultStoreError("file links are not set up (no key yet)")
        return self.links.url(event_id, position)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    def _delete(self, key: str) -> None:
        target = self.path(key)
        target.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            target.parent.rmdir()  # the event's folder, once empty

    async def check(self) -> None:
        try:
            folder = self.incoming()
            probe = folder / f".probe-{os.getpid()}"
            await asyncio.to_thread(probe.write_bytes, b"")
            probe.unlink()
        except OSError as exc:
            raise ResultStoreError(
                f"cannot write to {self.folder}: {exc.strerror or exc}"
            ) from None


async def results_in_use(settings: Settings, store: Keeping) -> bool:
    """Whether this process opens the result store: while a source or route keeps results, or
    while files are recorded, so that turning ``keep_results`` off still fetches those waiting,
    serves the kept ones and deletes pruned ones."""
    return settings.keeps_results or await store.holds_kept_files()


async def open_result_store(settings: Settings, store: Meta) -> ResultStore:
    """The configured result store, its links signed with the keys of URL tokens
    (``PHOTOHOOK_SECRET_KEYS``, else the key kept in the database)."""
    config = settings.results
    links = None
    if config.store == "local":
        keys = [key.reveal() for key in settings.secret_keys] or [await store.url_token_key()]
        base_url = config.base_url or settings.public_url()
        links = FileLinks(keys, base_url=base_url, lifetime=config.link_lifetime)
    return result_store(config, settings.database_url, links)


def result_store(config: ResultsConfig, database_url: str, links: FileLinks | None) -> ResultStore:
    """The configured result store."""
    if config.store == "s3":
        from receiver.keeping._s3 import S3Store

        assert config.s3 is not None
        return S3Store(config.s3, lifetime=config.link_lifetime)
    return LocalStore(config.folder(database_url), links)


__all__ = ["LocalStore", "ResultStore", "result_store", "results_in_use", "storage_key"]
