from __future__ import annotations

import pytest

from receiver.cli.service import listen_url
from receiver.config.settings import Settings


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:18100"),
        ("0.0.0.0", "http://127.0.0.1:18100"),
        ("::", "http://[::1]:18100"),
        ("fd00::5", "http://[fd00::5]:18100"),
        ("hooks.internal", "http://hooks.internal:18100"),
    ],
)
def test_url_defaults_to_where_serve_listens(host: str, expected: str) -> None:
    settings = Settings.load(environ={"PHOTOHOOK_HOST": host, "PORT": "18100"})
    assert listen_url(settings) == expected


def test_check_says_how_a_source_names_its_batches() -> None:
    import re

    from receiver.cli.service import _batching
    from receiver.store import BatchRule

    by_key = BatchRule(re.compile(r"^(order-\d+)-"), expected=50, deadline=21600)
    assert _batching(by_key) == r"batches named by business id ^(order-\d+)-: 50 tasks, deadline 6h"
    assert _batching(BatchRule(labels=True)) == "batches named by labels: size set when closed"
