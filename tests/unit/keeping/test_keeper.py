"""The keeper against a fake store: whatever a fetch fails with, the file's attempt is recorded
and it is tried again on the schedule, so that no file (and no delivery waiting for it) is held
forever by an error nobody expected."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from receiver.config.results import ResultsConfig
from receiver.errors import ResultStoreError
from receiver.keeping.download import Download
from receiver.keeping.keeper import Keeper
from receiver.keeping.stores import LocalStore
from receiver.states import KeptState
from receiver.store import FileOutcome, KeptFile


class OneFile:
    """A store holding one waiting file, which records what the keeper says of it."""

    def __init__(self) -> None:
        self.file: KeptFile | None = KeptFile(
            "evt_1", 0, "https://cdn.example.com/a.png", "waiting"
        )
        self.outcomes: list[FileOutcome] = []
        self.recorded = asyncio.Event()
        self.released: list[str] = []

    async def claim_files(
        self, worker_id: str, limit: int, lease: float, now: float
    ) -> tuple[list[KeptFile], float | None]:
        found, self.file = self.file, None
        return ([found] if found else []), None

    async def finish_file(self, outcome: FileOutcome) -> bool:
        self.outcomes.append(outcome)
        self.recorded.set()
        return False

    async def forget_files(self, files: Sequence[tuple[str, int]]) -> None: ...

    async def release_files(self, worker_id: str) -> None:
        self.released.append(worker_id)

    async def kept_files(self, event_ids: Sequence[str]) -> dict[str, list[KeptFile]]:
        return {}

    async def kept_file(self, event_id: str, position: int) -> KeptFile | None:
        return None


class Fetched:
    """A fetcher that gets the file."""

    async def fetch(self, url: str, folder: Path) -> Download:
        path = folder / "part"
        path.write_bytes(b"png")
        return Download(path, 3, "image/png", "ab" * 32)

    async def aclose(self) -> None: ...


class Full(LocalStore):
    """A result store that takes nothing (a full disk, a bucket down)."""

    async def put(self, source: Path, key: str, content_type: str | None) -> None:
        raise ResultStoreError("cannot write the file: No space left on device")


class Broken:
    """A fetcher failing as no one planned for."""

    async def fetch(self, url: str, folder: Path) -> Download:
        raise RuntimeError("surprise")

    async def aclose(self) -> None: ...


async def run_until_recorded(keeper: Keeper, store: OneFile) -> None:
    """Run the keeper until it has recorded the store's one file, then stop it."""
    await keeper.start()
    try:
        async with asyncio.timeout(5):
            await store.recorded.wait()
    finally:
        await keeper.stop()


async def test_a_fetch_failing_unexpectedly_is_recorded_and_tried_again(tmp_path: Path) -> None:
    store = OneFile()
    fetcher: Any = Broken()
    keeper = Keeper(
        store, ResultsConfig(), LocalStore(tmp_path, None), worker_id="w", fetcher=fetcher
    )
    await run_until_recorded(keeper, store)
    [outcome] = store.outcomes
    assert outcome.state == KeptState.WAITING and outcome.error == "failed: RuntimeError"
    assert outcome.next_attempt_at is not None
    assert store.released == ["w"]  # a keeper that stops gives up its leases


async def test_a_failing_result_store_never_uses_up_the_files_retry_schedule(
    tmp_path: Path,
) -> None:
    store = OneFile()
    fetcher: Any = Fetched()
    keeper = Keeper(store, ResultsConfig(), Full(tmp_path, None), worker_id="w", fetcher=fetcher)
    await run_until_recorded(keeper, store)
    [outcome] = store.outcomes
    assert outcome.state == KeptState.WAITING and not outcome.counted
    assert outcome.error == "cannot write the file: No space left on device"
