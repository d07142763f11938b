from __future__ import annotations

from typing import NamedTuple


class ParsedEvent(NamedTuple):
    """What one callback says about one task, before it is given an id and stored."""

    type: str
    task_id: str
    task_type: str
    status: str
    business_id: str | None
    labels: tuple[str, ...]
    result_urls: tuple[str, ...]
    flagged: bool
