"""A 100 MB result file kept by a real ``photohook serve``: streamed to disk while hashed, so
the process's peak memory stays flat whatever the file's size."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from receiver.tokens import URLTokens
from tests.helpers import fixture
from tests.integration.origin import Origin, big_sha256, png
from tests.integration.servers import Sink, running

from .process import Serve, run_cli, wait_until

KEY = "download-test-key"
SIZE = 100 * 1024 * 1024


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far, in bytes (Linux's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_large_result_is_kept_with_memory_flat(tmp_path: Path) -> None:
    origin, sink = Origin(), Sink()
    origin.files["small.png"] = png()
    with running(origin.app, lifespan="off") as base, running(sink.app, lifespan="off") as to:
        (tmp_path / "photohook.toml").write_text(
            "[sources.fotor]\nkeep_results = true\n"
            f'[destinations.sink]\nurl = "{to}/hook"\n[[routes]]\nto = ["sink"]\n'
            "[server]\nallow_private_destinations = true\n"
            "[results]\nallow_private = true\n"
        )
        serve = Serve(tmp_path, env={"PHOTOHOOK_SECRET_KEYS": KEY})
        serve.start()
        try:
            assert serve.process is not None
            hook = f"{serve.base_url}/hooks/fotor/{URLTokens([KEY]).token('fotor')}"
            # A small file first, so that what keeping needs is loaded before the baseline.
            body = fixture("fotor/upscale-completed")
            httpx.post(hook, json=body | {"resultUrl": f"{base}/r/small.png"}).raise_for_status()
            wait_until(lambda: len(sink.received) == 1)
            before = peak_rss(serve.process.pid)

            started = time.perf_counter()
            big = body | {"taskId": "big-task", "resultUrl": f"{base}/big/{SIZE}"}
            answer = httpx.post(hook, json=big)
            answer.raise_for_status()
            [event_id] = answer.json()["event_ids"]
            wait_until(lambda: len(sink.received) == 2, within=120)
            seconds = time.perf_counter() - started
            growth = peak_rss(serve.process.pid) - before
        finally:
            serve.stop()
    [kept] = sink.received[1].json()["kept_results"]
    assert kept["status"] == "kept" and kept["size"] == SIZE
    assert kept["sha256"] == big_sha256(SIZE)
    kept_files = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert SIZE in [path.stat().st_size for path in kept_files]
    assert not list((tmp_path / "results" / ".incoming").iterdir())  # no part left behind
    shown = run_cli("event", event_id, cwd=tmp_path)
    assert f"result file 0: kept, {SIZE} bytes, image/png, sha256 {kept['sha256']}" in shown.stdout
    print(
        f"kept {SIZE / 2**20:.0f} MiB in {seconds:.2f}s ({SIZE / 2**20 / seconds:.0f} MiB/s), "
        f"peak RSS growth {growth / 2**20:.1f} MiB"
    )
    assert growth < 16 * 1024 * 1024, f"peak memory grew by {growth / 2**20:.1f} MiB"
