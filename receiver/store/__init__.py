"""Durable storage behind a narrow interface, one implementation per database engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..errors import ConfigError
from ..events import Event


@dataclass(frozen=True, slots=True)
class Receipt:
    """A callback as received, with its parsed events, stored in one transaction."""

    id: str
    source: str
    received_at: datetime
    peer: str | None
    client: str | None
    headers: bytes  # a JSON array of [name, value] pairs, secrets redacted
    body: bytes
    body_sha256: bytes
    events: tuple[Event, ...]
    via: str = "callback"


@dataclass(frozen=True, slots=True)
class Stored:
    """What storing a receipt did: the ids of its events, and which of them are new."""

    event_ids: tuple[str, ...]
    new_event_ids: tuple[str, ...]

    @property
    def duplicate(self) -> bool:
        return not self.new_event_ids


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for listing events, newest first."""

    source: str | None = None
    status: str | None = None
    task_id: str | None = None
    limit: int = 50


class Store(Protocol):
    """What photohook needs from a database."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None:
        """Finish pending commits and disconnect."""

    async def store(self, receipt: Receipt) -> Stored:
        """Store the receipt and its new events durably (committed when this returns).

        An event whose (source, task id, status) is already stored is a duplicate: it is not
        stored again; the receipt is kept, linked to the existing event, if its body differs.
        Raises :class:`~receiver.errors.StoreError` when the database cannot commit.
        """

    async def check_writable(self) -> None:
        """Raise StoreError unless a write can be committed now."""

    async def url_token_key(self) -> str:
        """The key for URL tokens kept in the database, generated on first use."""

    async def list_events(self, query: EventQuery) -> list[Event]:
        """Events matching ``query``, newest first."""


def open_store(database_url: str) -> Store:
    """The store for ``database_url`` (``sqlite:///path``), not yet opened."""
    scheme, _, rest = database_url.partition("://")
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise ConfigError(
                f"database URL {database_url!r}: expected sqlite:///relative.db or "
                "sqlite:////absolute/path.db"
            )
        return SQLiteStore(rest[1:])
    raise ConfigError(f"database URL: unsupported scheme {scheme!r} (expected sqlite)")


__all__ = ["EventQuery", "Receipt", "Store", "Stored", "open_store"]
