"""Reading a callback's body into what is stored: the checks ingest and a retry of a kept
rejected request share, authentication aside."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import orjson

from receiver.config.sources import SourceConfig
from receiver.errors import InvalidCallback, InvalidJSON, PayloadTooLarge, UnsupportedMediaType
from receiver.ids import new_id
from receiver.normalize import new_events
from receiver.routing import Router
from receiver.sources import KINDS, Kind
from receiver.store import BatchRule, Receipt, Tracking

#: Refusals of an authenticated callback for what it sent: such a request is kept, to be retried
#: once the cause is fixed (``photohook rejected retry``).
KEPT_REFUSALS = (InvalidJSON, PayloadTooLarge, UnsupportedMediaType, InvalidCallback)


@dataclass(frozen=True, slots=True)
class SourceRules:
    """How a source's callbacks are read into events, authentication aside."""

    name: str
    kind: Kind
    ranks: dict[str, int]
    tracking: Tracking | None
    keep_results: bool = False
    batching: BatchRule | None = None

    @classmethod
    def of(cls, config: SourceConfig) -> SourceRules:
        kind = KINDS[config.kind]
        return cls(
            config.name,
            kind,
            kind.status_rank,
            config.tracking,
            config.keep_results,
            config.batching,
        )

    def receipt(
        self,
        body: bytes,
        *,
        router: Router,
        received_at: datetime,
        peer: str | None,
        client: str | None,
        headers: bytes,
        trace_context: str | None = None,
    ) -> Receipt:
        """The receipt of a callback's body and its events; raises :class:`InvalidJSON` or
        :class:`InvalidCallback` naming the field."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidJSON(f"the body is not valid JSON: {exc.msg}") from None
        events = new_events(
            self.kind.parse(document),
            source=self.name,
            kind=self.kind,
            ranks=self.ranks,
            router=router,
            tracking=self.tracking,
            keep_results=self.keep_results,
            payload=document,
            received_at=received_at,
            batching=self.batching,
        )
        return Receipt(
            id=new_id("rcv"),
            source=self.name,
            received_at=received_at,
            peer=peer,
            client=client,
            headers=headers,
            body=body,
            body_sha256=hashlib.sha256(body).digest(),
            events=events,
            trace_context=trace_context,
            route=router.destinations,
        )


def check_media_type(content_type: str | None, content_encoding: str | None) -> None:
    """Raise :class:`UnsupportedMediaType` unless the body is declared JSON, uncompressed."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType()
    if content_encoding and content_encoding.strip().lower() != "identity":
        raise UnsupportedMediaType("the body must not be compressed (Content-Encoding)")
