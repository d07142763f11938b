"""``python -m bench`` still runs: one short round of everything it measures by default, so
that a change to photohook's internals that breaks the benchmark is seen here. No speed is
asserted; that is the benchmark's own business."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_one_short_round_of_the_benchmark_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "results"
    smallest = [
        "--seconds",
        "0.5",
        "--warmup",
        "0.2",
        "--rounds",
        "1",
        "--connections",
        "2",
        "--deliveries",
        "10",
        "--rate",
        "10",
        "--latency-seconds",
        "1",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "bench", *smallest, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    [report] = out.glob("*.md")
    [data] = out.glob("*.json")
    results = json.loads(data.read_text())
    names = [row["name"][:2] for row in results["ingest"]]
    assert names == ["a.", "b.", "c.", "d.", "f."]
    assert all(row["errors"] == 0 for row in results["ingest"])
    assert results["delivery"]["events"] == 10
    assert [latency["delivered"] for latency in results["latency"]] == [10, 10]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    commit = head.stdout.strip() if head.returncode == 0 else "unknown"
    assert results["commit"].removesuffix("-dirty") == commit
    assert f"Commit {results['commit']}." in report.read_text()
