"""``photohook batch create|close|show`` and ``photohook batches`` as processes, beside a running
``photohook serve`` whose worker delivers the batch event to a real sink."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.helpers import fixture
from tests.integration.servers import Sink, running

from .process import Serve, run_cli, wait_until

DONE = fixture("fotor/upscale-completed")


def test_batches_declared_and_closed_on_the_command_line(tmp_path: Path) -> None:
    sink = Sink()
    with running(sink.app, lifespan="off") as sink_url:
        (tmp_path / "photohook.toml").write_text(
            "[server]\nallow_private_destinations = true\n"
            '[sources.fotor]\nbatch_key = "^(order-\\\\d+)-"\n'
            f'[destinations.app]\nurl = "{sink_url}/hook"\n'
            '[[routes]]\ntype = ["batch.*"]\nto = ["app"]\n'
        )
        server = Serve(tmp_path)
        server.start()
        try:
            url = run_cli("url", "fotor", "--base-url", server.base_url, cwd=tmp_path)
            hook = url.stdout.strip()
            created = run_cli(
                "batch", "create", "shoot-1", "--task", "fotor:a", "--task", "fotor:b",
                "--deadline", "1h", cwd=tmp_path,
            )  # fmt: skip
            assert created.returncode == 0, created.stderr
            assert created.stdout == (
                "batch shoot-1: open, 0/2 final (0 completed, 0 failed), 2 tasks known\n"
            )
            for task_id, business_id in (("a", None), ("b", None), ("r1", "order-7-1")):
                body = DONE | {"taskId": task_id, "businessId": business_id}
                assert httpx.post(hook, json=body).status_code == 200
            wait_until(lambda: len(sink.received) == 1)
            assert sink.received[0].json()["task_id"] == "shoot-1"
            listed = run_cli("batches", cwd=tmp_path).stdout.splitlines()
            assert listed[0].split() == [
                "BATCH", "STATE", "DONE", "COMPLETED", "FAILED", "DEADLINE", "EVENT",
            ]  # fmt: skip
            assert listed[1].split()[:5] == ["order-7", "open", "1/?", "1", "0"]
            assert listed[2].split()[:5] == ["shoot-1", "completed", "2/2", "2", "0"]
            closed = run_cli("batch", "close", "order-7", cwd=tmp_path)
            assert closed.stdout.startswith("batch order-7: completed, 1/1 final")
            wait_until(lambda: len(sink.received) == 2)
            shown = json.loads(run_cli("batch", "show", "order-7", "--json", cwd=tmp_path).stdout)
            assert [t["task_id"] for t in shown["tasks"]] == ["r1"]
            assert shown["event_id"] == sink.received[1].json()["id"]
        finally:
            server.stop()
    refused = run_cli("batch", "create", "shoot-1", "--task", "fotor:c", cwd=tmp_path)
    assert refused.returncode == 2
    assert (
        refused.stderr == "photohook: error: batch shoot-1 is completed: it takes no more changes\n"
    )
    bad = run_cli("batch", "create", "x", "--task", "fotor", cwd=tmp_path)
    assert bad.returncode == 2 and "expected SOURCE:TASK_ID" in bad.stderr
    missing = run_cli("batch", "show", "nope", cwd=tmp_path)
    assert missing.returncode == 1 and "no batch 'nope'" in missing.stderr
