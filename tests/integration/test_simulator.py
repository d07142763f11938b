"""``photohook send-test`` against photohook under uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from receiver.cli.simulator import send_test
from receiver.store import EventQuery

Start = Callable[..., Any]


async def test_fotor_callbacks_are_accepted_and_summarized(photohook: Start) -> None:
    app = await photohook("")
    summary = await send_test(
        kind="fotor",
        url=app.hook,
        status="completed",
        task_type="avatar",
        count=40,
        concurrency=4,
        secret=None,
    )
    assert (summary.sent, summary.accepted, summary.duplicates) == (40, 40, 0)
    assert summary.ok
    assert "sent 40, accepted 40, duplicates 0" in summary.report()
    events = await app.store.list_events(EventQuery(limit=100))
    assert len(events) == 40
    assert all(e.task_type == "avatar" and len(e.result_urls) == 2 for e in events)


async def test_cropphoto_shapes_and_rejections_are_counted(photohook: Start) -> None:
    app = await photohook('[sources.crop]\nkind = "cropphoto"\nsecrets = ["shh"]\n')
    url = f"{app.base_url}/hooks/crop"
    summary = await send_test(
        kind="cropphoto",
        url=url,
        status="in_progress",
        task_type="x",
        count=10,
        concurrency=2,
        secret="shh",
    )
    assert summary.accepted == 10
    statuses = {e.status for e in await app.store.list_events(EventQuery())}
    assert statuses == {"processing"}
    refused = await send_test(
        kind="cropphoto",
        url=url,
        status="failed",
        task_type="x",
        count=3,
        concurrency=1,
        secret="wrong",
    )
    assert not refused.ok
    assert refused.rejected == {401: 3}
    assert "rejected by status: 401: 3" in refused.report()
