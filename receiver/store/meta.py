"""Values photohook keeps for itself: the key of URL tokens, whether a source's API key was
rejected, the probe of whether the database takes writes."""

from __future__ import annotations

from datetime import UTC, datetime

from receiver.events import format_time
from receiver.store.tx import Tx
from receiver.tokens import generate_key


async def get(tx: Tx, key: str) -> str | None:
    found = await tx.fetch("SELECT value FROM meta WHERE key = ?", [key])
    return next((str(row[0]) for row in found), None)


async def put(tx: Tx, key: str, value: str | None) -> None:
    """Keep ``value`` under ``key``; with None, forget it."""
    if value is None:
        await tx.execute("DELETE FROM meta WHERE key = ?", (key,))
    else:
        await tx.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


async def probe(tx: Tx, now: float) -> None:
    """Write something, to see that a write commits."""
    await put(tx, "ready_probe", format_time(datetime.fromtimestamp(now, UTC)))


async def url_token_key(tx: Tx) -> str:
    """The key of URL tokens, made on first use."""
    await tx.execute(
        "INSERT INTO meta (key, value) VALUES ('url_token_key', ?) ON CONFLICT (key) DO NOTHING",
        (generate_key(),),
    )
    [(key,)] = await tx.fetch("SELECT value FROM meta WHERE key = 'url_token_key'")
    return str(key)
