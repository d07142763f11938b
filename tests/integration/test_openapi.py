"""schemathesis, run against /openapi.json of photohook under uvicorn: no 5xx, no answer that
contradicts the document."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import LONG

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)


async def test_schemathesis_finds_no_server_error_and_no_contradiction(
    photohook: Callable[..., Any], monkeypatch: Any
) -> None:
    app = await photohook(
        '[destinations.log]\nhandler = "handlers.log:print_event"\n[[routes]]\nto = ["log"]\n'
    )
    await app.send()
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(SCHEMATHESIS),
            "run",
            f"{app.base_url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            "200" if LONG else "25",
            "--seed",
            "7",
            "--request-timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = result.stdout[-6000:]
    print(summary)
    assert result.returncode == 0, summary
    assert " passed" in summary
