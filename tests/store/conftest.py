from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from receiver.store import Store, open_store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = open_store(database_url)
    await opened.open()
    yield opened
    await opened.close()
