"""Database faults under load: the database's file system fills up, twice. Callbacks get 503, never
200 for what is not stored and never a 4xx; ingest resumes without a restart once space is freed,
and nothing acknowledged is missing. (A read-only remount cannot be staged under a live database:
the kernel refuses it while SQLite holds its files open for writing.)"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Serve, Traffic, fotor_body, run_cli, send_all, size, stored_event_ids


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs of its own (root only); skipped elsewhere, but never in CI."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(
        # Room for the database of every phase (about 2 KiB a callback), so that freeing the
        # filler frees the file system.
        ["mount", "-t", "tmpfs", "-o", f"size={size(8, 96)}m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI must be able to mount a tmpfs: {result.stderr}")
        pytest.skip(f"cannot mount a small file system here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(mount_point: Path) -> Path:
    filler = mount_point / "filler"
    with filler.open("wb", buffering=0) as file:  # unbuffered: nothing is left to flush at close
        try:
            while True:
                file.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def test_database_faults_answer_503_and_heal_without_a_restart(
    small_fs: Path, tmp_path: Path
) -> None:
    per_phase = size(300, 3000)
    database = f"sqlite:///{small_fs / 'photohook.db'}"
    env = {"PHOTOHOOK_DATABASE_URL": database}
    serve = Serve(tmp_path, env=env)
    serve.start()
    traffic = Traffic()
    phases: dict[str, Counter[int]] = {}
    answers: dict[str, list[int]] = {}
    try:
        url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path, env=env).stdout
        url = url.strip()

        def phase(name: str, start: int) -> None:
            before, answered = Counter(traffic.statuses), len(traffic.answers)
            bodies = [fotor_body(i, prefix=name) for i in range(start, start + per_phase)]
            asyncio.run(send_all(url, bodies, concurrency=16, traffic=traffic))
            phases[name] = traffic.statuses - before
            answers[name] = traffic.answers[answered:]

        phase("healthy", 0)
        filler = fill(small_fs)
        phase("full", per_phase)
        filler.unlink()
        phase("freed", per_phase)
        filler = fill(small_fs)
        phase("full again", 2 * per_phase)
        filler.unlink()
        phase("freed again", 2 * per_phase)
    finally:
        serve.stop()
    print("\n" + "; ".join(f"{name}: {dict(counts)}" for name, counts in phases.items()))
    assert phases["healthy"] == {200: per_phase}
    for name in ("full", "full again"):
        assert set(phases[name]) <= {200, 503}, name
        assert phases[name][503] > 0, name
    for name in ("freed", "freed again"):
        # Healed without a restart, and for good: the phase ends in a run of successes.
        assert set(phases[name]) <= {200, 503}, name
        tail = answers[name][-(per_phase // 2) :]
        assert tail == [200] * (per_phase // 2), (name, answers[name])
    missing = set(traffic.acknowledged) - stored_event_ids(tmp_path, env)
    assert not missing
