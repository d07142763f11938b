"""Comparing what today's code produces with reference files (goldens) under ``files/``.

A difference fails the test with a unified diff. To accept an intended change, regenerate the
files with ``PHOTOHOOK_UPDATE_GOLDEN=1 pytest tests/golden`` and review their diff in the commit.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import pytest

FILES = Path(__file__).parent / "files"
# Read at import: the tests' autouse fixture clears PHOTOHOOK_* variables before each test.
UPDATE = os.environ.get("PHOTOHOOK_UPDATE_GOLDEN") == "1"
HOW_TO_UPDATE = "if the change is intended: PHOTOHOOK_UPDATE_GOLDEN=1 pytest tests/golden"


def as_json(value: Any) -> str:
    """The canonical text of a JSON value: sorted keys, two-space indents, a final newline."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def check(name: str, actual: str) -> None:
    """Fail unless ``actual`` is the text of the golden file ``name`` (or write it, updating)."""
    path = FILES / name
    if UPDATE:
        if not path.exists() or path.read_text(encoding="utf-8") != actual:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no golden file {name}; {HOW_TO_UPDATE}", pytrace=False)
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            f"golden/{name}",
            "today's code",
        )
        pytest.fail(
            f"{name} differs from its golden file ({HOW_TO_UPDATE}):\n{''.join(diff)}",
            pytrace=False,
        )


def check_json(name: str, value: Any) -> None:
    check(name, as_json(value))
