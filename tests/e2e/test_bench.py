"""``python -m bench`` still runs: one short round of everything it measures by default, so
that a change to photohook's internals that breaks the benchmark is seen here. No speed is
asserted; that is the benchmark's own business."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The peer the benchmark sets beside the ceiling: adnanh/webhook, Debian's ``webhook`` package.
PEER = shutil.which("webhook")
if PEER is None and os.environ.get("CI"):
    raise RuntimeError("CI must have adnanh/webhook (Debian's webhook package) for the benchmark")


@pytest.fixture(scope="module")
def one_round(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "results"
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
    no_peer = ["--no-peer"] if PEER is None else []
    run = subprocess.run(
        [sys.executable, "-m", "bench", *smallest, *no_peer, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    [report] = out.glob("*.md")
    [data] = out.glob("*.json")
    return report, json.loads(data.read_text())


@pytest.mark.timeout(180)
def test_one_short_round_of_the_benchmark_writes_its_results(
    one_round: tuple[Path, dict[str, Any]],
) -> None:
    report, results = one_round
    names = [row["name"][:2] for row in results["ingest"] if not row["name"].startswith("p.")]
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


@pytest.mark.timeout(180)
def test_the_peer_is_measured_in_the_same_rounds(one_round: tuple[Path, dict[str, Any]]) -> None:
    if PEER is None:
        pytest.skip(
            "no adnanh/webhook is installed (apt-get install webhook): the peer is left out"
        )
    report, results = one_round
    [peer] = [row for row in results["ingest"] if row["name"].startswith("p.")]
    assert peer["errors"] == 0
    assert peer["rate"] > 0
    assert results["durable_ingest"]["to_peer"] is not None
    assert "of adnanh/webhook's (p)" in report.read_text()
