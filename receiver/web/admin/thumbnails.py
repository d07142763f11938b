"""What the dashboard shows of an event's result files: the kept copy where there is one (it
outlives the provider's link), whether each was flagged, and how keeping it went."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from receiver.events import Event
from receiver.states import KeptState
from receiver.store import Keeping, KeptFile
from receiver.web.files import Files

#: (what to show, flagged, the provider's URL, a note on the kept copy)
Image = tuple[str, bool, str, str]


async def images(
    request: Request, store: Keeping, files: Files | None, events: Sequence[Event]
) -> dict[str, list[Image]]:
    """Each event's result images, by event id."""
    kept: dict[str, list[KeptFile]] = {}
    if files is not None and files.results is not None:
        kept = await store.kept_files([event.id for event in events])
    root = request.scope.get("root_path", "")
    found = {}
    for event in events:
        by_position = {file.position: file for file in kept.get(event.id, [])}
        shown = []
        for index, (url, flagged) in enumerate(_flagged(event)):
            src, note = url, ""
            file = by_position.get(index)
            if file is not None and files is not None:
                src, note = _kept(files, root, event.id, file, url)
            shown.append((src, flagged, url, note))
        found[event.id] = shown
    return found


def _kept(files: Files, root: str, event_id: str, file: KeptFile, url: str) -> tuple[str, str]:
    if file.state == KeptState.KEPT and file.storage_key is not None:
        link = files.link(event_id, file.position, file.storage_key)
        if link is not None:
            return (root + link if link.startswith("/") else link), "kept copy"
    if file.state == KeptState.MISSING:
        return url, f"not kept: {file.last_error}"
    if file.state == KeptState.WAITING:
        return url, "being kept"
    return url, ""


def _flagged(event: Event) -> list[tuple[str, bool]]:
    """Result URLs with whether each was flagged (Fotor's avatar ``hasHsfw``); the payload was
    validated at ingest, so its avatar results are objects with lists of image objects."""
    flagged = {
        image.get("url")
        for result in event.payload.get("avatarResult") or []
        for image in result.get("images") or []
        if image.get("hasHsfw") is True
    }
    return [(url, url in flagged) for url in event.result_urls]
