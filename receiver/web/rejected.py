"""Rejected requests: authenticated callbacks refused for their content, which ingest keeps
(see :data:`~receiver.web.callbacks.KEPT_REFUSALS`), and running them through ingest again once the
configuration or the code was fixed.

A retry is not authenticated again (the request was, when it arrived), but its source must still
be configured. It is read as ingest reads a callback: accepted, it becomes an ordinary event,
deduplicated as usual, with the time it first arrived; refused, the record says why and stays.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import orjson

from receiver.config.settings import Settings
from receiver.errors import (
    AlreadyAccepted,
    Conflict,
    NotFound,
    PayloadTooLarge,
    Refused,
    UnsupportedMediaType,
)
from receiver.events import parse_time
from receiver.routing import Router
from receiver.store import Receipt, Rejected, RejectedQuery, RejectedRequest, Stored
from receiver.web.callbacks import KEPT_REFUSALS, SourceRules, check_media_type
from receiver.web.responses import answer, status_of

logger = logging.getLogger("photohook.rejected")

#: The most rejected requests one bulk retry runs.
BULK_LIMIT = 10_000

OnStored = Callable[[Receipt, Stored], None]


async def retry(
    store: Rejected,
    settings: Settings,
    router: Router,
    rejected_id: str,
    on_stored: OnStored | None = None,
) -> RejectedRequest:
    """Run the kept request ``rejected_id`` through ingest again; the record, as it now stands.

    Raises :class:`NotFound` for an unknown id, :class:`Conflict` when it cannot be run again (it
    was accepted already, its source is gone, or its body was not kept); ``on_stored`` is called
    once it was stored.
    """
    record = await store.get_rejected(rejected_id)
    if record is None:
        raise NotFound("no rejected request with that id")
    await _run(store, settings, router, record, on_stored)
    updated = await store.get_rejected(rejected_id)
    return updated if updated is not None else record  # pruned meanwhile


async def retry_all(
    store: Rejected,
    settings: Settings,
    router: Router,
    source: str | None = None,
    on_stored: OnStored | None = None,
    progress: Callable[[int], None] | None = None,
) -> Counter[str]:
    """Retry every kept request a retry can run (not accepted yet, body kept) of ``source``, at
    most ``BULK_LIMIT``: how many were accepted, duplicates, rejected again, or could not be run
    (``skipped``: the source is gone). One another retry accepted meanwhile is not counted.
    ``progress`` is told of each one run."""
    outcomes: Counter[str] = Counter()
    query = RejectedQuery(source=source, retryable=True, limit=500)
    done = 0
    while done < BULK_LIMIT:
        found = await store.list_rejected(query)
        for record in found[: BULK_LIMIT - done]:
            try:
                outcomes[await _run(store, settings, router, record, on_stored)] += 1
            except AlreadyAccepted:
                pass
            except Conflict:
                outcomes["skipped"] += 1
            if progress is not None:
                progress(1)
        done += len(found)
        if len(found) < query.limit:
            break
        query = RejectedQuery(source=source, retryable=True, before=found[-1].id, limit=500)
    return outcomes


async def _run(
    store: Rejected,
    settings: Settings,
    router: Router,
    record: RejectedRequest,
    on_stored: OnStored | None,
) -> str:
    """Retry one record; its outcome (accepted, duplicate or rejected)."""
    if record.outcome in ("accepted", "duplicate"):
        raise AlreadyAccepted(
            f"it was retried already: {record.outcome} as {', '.join(record.event_ids)}; "
            "it is not run again"
        )
    config = settings.sources.get(record.source)
    if config is None:
        raise Conflict(f"source {record.source!r} is no longer configured")
    if record.body is None:
        raise Conflict(
            "its body was not kept (it was larger than the limit), so it cannot be retried"
        )
    try:
        if record.status != status_of(UnsupportedMediaType).status_code:
            # Retrying a 415 is the operator saying the body is JSON after all: the stored
            # Content-Type never changes, and the body is still parsed and validated below.
            check_media_type(
                _header(record.headers, "content-type"),
                _header(record.headers, "content-encoding"),
            )
        if len(record.body) > settings.max_body_bytes:
            raise PayloadTooLarge(
                f"the body is larger than the limit of {settings.max_body_bytes} bytes"
            )
        receipt = SourceRules.of(config).receipt(
            record.body,
            router=router,
            received_at=parse_time(record.received_at),
            peer=record.peer,
            client=record.client,
            headers=orjson.dumps(record.headers),
        )
    except KEPT_REFUSALS as error:
        found = answer(error)
        await store.refuse_rejected(record.id, _error(error))
        logger.info(
            "retried %s of source %s: refused again with %d %s: %s",
            record.id,
            record.source,
            found.status_code,
            found.code,
            found.message,
        )
        return "rejected"
    stored = await store.accept_rejected(record.id, receipt)
    outcome = "duplicate" if stored.duplicate else "accepted"
    logger.info(
        "retried %s of source %s: %s as %s",
        record.id,
        record.source,
        outcome,
        ", ".join(stored.event_ids),
    )
    if on_stored is not None:
        on_stored(receipt, stored)
    return outcome


def _header(headers: list[list[str]], name: str) -> str | None:
    """The first value of the header ``name``, as ingest reads it."""
    return next((value for key, value in headers if key.lower() == name), None)


def _error(error: Refused) -> dict[str, object]:
    """What a refused retry is recorded as: its answer's status, code, message and field."""
    found = answer(error)
    kept: dict[str, object] = {
        "status": found.status_code,
        "code": found.code,
        "message": found.message,
    }
    if found.field is not None:
        kept["field"] = found.field
    return kept
