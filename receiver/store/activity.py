"""Counts per time bucket for the dashboard's overview: callbacks stored and delivery attempts
made since a moment. Each query reads only its window, through an index on the time, so its
cost follows the recent traffic and not the history."""

from __future__ import annotations

from datetime import UTC, datetime

from receiver.events import format_timestamp
from receiver.store.records import Count
from receiver.store.tx import Tx

#: Callback buckets are prefixes of the stored RFC 3339 time: the minute or the hour.
_PREFIXES = {60: len("2026-12-06T03:41"), 3600: len("2026-12-06T03")}

#: Stored callbacks that made an event, by source (duplicates and rejected ones are not stored
#: by receipt alone: see the dashboard's overview).
CALLBACKS = """
    SELECT source, substr(received_at, 1, ?) AS bucket, COUNT(*) FROM receipts
    WHERE received_at >= ? AND via = 'callback' AND duplicate = 0
    GROUP BY source, bucket
"""

#: Attempts by destination and by what came of them: delivered, failed (to be tried again, or
#: queued again later) or dead (the attempt after which the delivery gave up).
ATTEMPTS = """
    SELECT d.destination,
        CASE WHEN a.ok = 1 THEN 'delivered'
            WHEN d.state = 'dead' AND a.number = d.attempts THEN 'dead'
            ELSE 'failed' END AS outcome,
        {bucket} AS bucket, COUNT(*)
    FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
    WHERE a.started_at >= ?
    GROUP BY d.destination, outcome, bucket
"""


async def callbacks(tx: Tx, since: float, bucket_seconds: int) -> list[Count]:
    """Accepted callbacks per source and bucket (a minute or an hour) since ``since``, which
    must start a bucket."""
    found = await tx.fetch(CALLBACKS, [_PREFIXES[bucket_seconds], format_timestamp(since)])
    return [
        Count(_bucket_start(prefix), source, "accepted", count) for source, prefix, count in found
    ]


async def attempts(tx: Tx, since: float, bucket_seconds: int) -> list[Count]:
    """Delivery attempts per destination, outcome and bucket since ``since``."""
    bucket = tx.dialect.integer_part.format(value="(a.started_at - ?) / ?")
    found = await tx.fetch(ATTEMPTS.format(bucket=bucket), [since, float(bucket_seconds), since])
    return [
        Count(since + int(index) * bucket_seconds, destination, outcome, count)
        for destination, outcome, index, count in found
    ]


def _bucket_start(prefix: str) -> float:
    """The Unix time at which the bucket named by a prefix of a stored time starts."""
    moment = datetime.fromisoformat(prefix + ":00:00"[: 19 - len(prefix)])
    return moment.replace(tzinfo=UTC).timestamp()
