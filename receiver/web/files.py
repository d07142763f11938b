"""``GET /files/{token}``: a kept result file of the local store, by its signed, expiring link.

The token is checked before anything is read (403 when altered, made up or expired); a file
pruned by retention is 404. The file is streamed with the content type it was fetched with,
sandboxed: a provider's "image" that is HTML must not run as photohook's own page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from receiver.errors import FileLinkRefused, KeptFileGone
from receiver.keeping import LocalStore, ResultStore
from receiver.states import KeptState
from receiver.store import Keeping

_HEADERS = {
    "content-security-policy": "default-src 'none'; sandbox",
    "x-content-type-options": "nosniff",
    "cache-control": "private, max-age=3600",
    "referrer-policy": "no-referrer",
}


class Files:
    """Serves kept files; :meth:`start` gives it the result store (none: nothing is kept)."""

    def __init__(self, store: Keeping) -> None:
        self._store = store
        self.results: ResultStore | None = None

    def start(self, results: ResultStore | None) -> None:
        self.results = results

    async def get(self, request: Request) -> Response:
        results = self.results
        if not isinstance(results, LocalStore) or results.links is None:
            raise FileLinkRefused()  # no link of this store is ever valid here
        event_id, position = results.links.check(request.path_params["token"])
        found = await self._store.kept_file(event_id, position)
        if found is None or found.state != KeptState.KEPT or found.storage_key is None:
            raise KeptFileGone()
        path = results.path(found.storage_key)
        if not path.is_file():
            raise KeptFileGone()
        return FileResponse(
            path, media_type=found.content_type or "application/octet-stream", headers=_HEADERS
        )

    def link(self, event_id: str, position: int, key: str) -> str | None:
        """A URL of a kept file, for the dashboard: a ``/files`` path (or a presigned URL)."""
        results = self.results
        if results is None:
            return None
        if isinstance(results, LocalStore) and results.links is not None:
            return f"/files/{results.links.token(event_id, position)}"
        return results.link(event_id, position, key)


__all__ = ["Files"]
