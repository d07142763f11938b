from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import msgspec
import orjson

from receiver.events import Event
from receiver.ids import new_id
from receiver.sources import KINDS
from receiver.store import NewEvent, Receipt, Tracking

RANKS = KINDS["fotor"].status_rank


def receipt(
    task_id: str = "task-1",
    status: str = "completed",
    *,
    source: str = "fotor",
    body: bytes | None = None,
    extra_tasks: tuple[tuple[str, str], ...] = (),
    destinations: tuple[str, ...] = (),
    rank: int | None = None,
    terminal: bool = False,
    tracking: Tracking | None = None,
    received_at: datetime | None = None,
) -> Receipt:
    received_at = received_at or datetime.now(UTC)
    body = body or orjson.dumps({"taskId": task_id, "status": status, "type": "upscale"})
    events = tuple(
        NewEvent(
            Event(
                id=new_id("evt"),
                source=source,
                kind="fotor",
                type=f"fotor.task.{task_status}",
                task_id=task,
                task_type="upscale",
                status=task_status,
                business_id="order-1",
                labels=("a", "b"),
                result_urls=("https://cdn.example.com/r.png",),
                flagged=False,
                received_at=received_at,
                payload=orjson.loads(body),
            ),
            rank if rank is not None else RANKS[task_status],
            destinations,
            terminal,
            tracking,
        )
        for task, task_status in ((task_id, status), *extra_tasks)
    )
    return Receipt(
        id=new_id("rcv"),
        source=source,
        received_at=received_at,
        peer="127.0.0.1",
        client="127.0.0.1",
        headers=b'[["content-type","application/json"]]',
        body=body,
        body_sha256=hashlib.sha256(body).digest(),
        events=events,
    )


def aged(task_id: str, days: float, *, destinations: tuple[str, ...] = ()) -> Receipt:
    """A callback of ``task_id`` received ``days`` ago."""
    fresh = receipt(task_id, destinations=destinations)
    then = datetime.now(UTC) - timedelta(days=days)
    events = tuple(
        msgspec.structs.replace(new, event=dataclasses.replace(new.event, received_at=then))
        for new in fresh.events
    )
    return msgspec.structs.replace(fresh, received_at=then, events=events)
