"""Kept rejected requests in the store, on both engines: the cap, listing, retries, pruning."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from receiver.errors import AlreadyAccepted
from receiver.ids import new_id
from receiver.store import EventQuery, Pruned, RejectedQuery, Rejection, Store

from .factories import receipt


def rejection(
    source: str = "fotor", *, cap: int = 10, body: bytes | None = b'{"status": 9}'
) -> Rejection:
    return Rejection(
        id=new_id("rej"),
        source=source,
        received_at=datetime.now(UTC),
        peer="127.0.0.1",
        client="54.212.95.175",
        headers=b'[["content-type","application/json"],["x-webhook-secret","[redacted]"]]',
        body=body,
        status=422,
        code="invalid_payload",
        message="status must be one of 0, 1, 2",
        field="status",
        keep_at_most=cap,
    )


async def test_rejections_are_kept_up_to_each_sources_cap(store: Store) -> None:
    # Concurrent ones share a batch: the cap holds within a batch too.
    kept = await asyncio.gather(*(store.keep_rejected(rejection(cap=3)) for _ in range(5)))
    assert sorted(kept) == [False, False, True, True, True]
    assert await store.keep_rejected(rejection("other", cap=3)) is True
    assert await store.keep_rejected(rejection(cap=4)) is True  # a larger cap leaves room
    assert await store.keep_rejected(rejection(cap=4)) is False
    assert len(await store.list_rejected(RejectedQuery(source="fotor"))) == 4
    assert len(await store.list_rejected(RejectedQuery())) == 5


async def test_kept_requests_are_listed_newest_first_with_a_cursor(store: Store) -> None:
    ids = []
    for _ in range(5):
        one = rejection(body=None if not ids else b'{"status": 9}')
        assert await store.keep_rejected(one)
        ids.append(one.id)
    first = await store.list_rejected(RejectedQuery(limit=3))
    assert [r.id for r in first] == ids[::-1][:3]
    rest = await store.list_rejected(RejectedQuery(limit=3, before=first[-1].id))
    assert [r.id for r in rest] == ids[::-1][3:]
    oldest = await store.get_rejected(ids[0])
    assert oldest is not None and oldest.body is None
    record = await store.get_rejected(ids[1])
    assert record is not None
    assert record.body == b'{"status": 9}'
    assert record.headers == [
        ["content-type", "application/json"],
        ["x-webhook-secret", "[redacted]"],
    ]
    assert (record.status, record.code, record.field) == (422, "invalid_payload", "status")
    assert record.client == "54.212.95.175" and record.retries == 0 and record.outcome is None
    assert await store.get_rejected("rej_missing") is None


async def test_retries_record_what_became_of_the_request(store: Store) -> None:
    refused, accepted, resent = rejection(), rejection(), rejection()
    for one in (refused, accepted, resent):
        await store.keep_rejected(one)
    error = {"status": 422, "code": "invalid_payload", "message": "still", "field": "status"}
    await store.refuse_rejected(refused.id, error)
    stored = await store.accept_rejected(accepted.id, receipt("task-9"))
    with pytest.raises(AlreadyAccepted):  # an accepted request is not run again
        await store.accept_rejected(accepted.id, receipt("task-9"))
    again = await store.accept_rejected(resent.id, receipt("task-9"))  # the same callback
    assert not stored.duplicate and again.duplicate
    assert again.event_ids == stored.event_ids
    [event] = await store.list_events(EventQuery())
    assert event.id == stored.event_ids[0]

    still = await store.get_rejected(refused.id)
    assert still is not None
    assert (still.outcome, still.retries, still.retry_error) == ("rejected", 1, error)
    assert still.retried_at is not None and still.event_ids == []
    done = await store.get_rejected(accepted.id)
    assert done is not None
    assert (done.outcome, done.retries, done.retry_error) == ("accepted", 1, None)
    assert done.event_ids == list(stored.event_ids)
    twice = await store.get_rejected(resent.id)
    assert twice is not None and (twice.outcome, twice.event_ids) == ("duplicate", done.event_ids)
    retryable = await store.list_rejected(RejectedQuery(retryable=True))
    assert [r.id for r in retryable] == [refused.id]


async def test_prune_deletes_kept_requests_received_before_the_cutoff(store: Store) -> None:
    for _ in range(3):
        await store.keep_rejected(rejection())
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert await store.prune(later - timedelta(days=1), dry_run=True) == Pruned()
    assert await store.prune(later, dry_run=True) == Pruned(rejected=3)
    assert len(await store.list_rejected(RejectedQuery())) == 3
    assert await store.prune(later, batch=2) == Pruned(rejected=3)
    assert await store.list_rejected(RejectedQuery()) == []
    assert await store.keep_rejected(rejection(cap=1)) is True  # room again
