"""The delivery commands, run as separate processes beside a running ``photohook serve``."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import fixture
from tests.integration.servers import Reply, Sink, running

from .process import Serve, Worker, run_cli


def config(sink_url: str) -> str:
    return (
        "[server]\nallow_private_destinations = true\n"
        f'[destinations.sink]\nurl = "{sink_url}/hook"\nretry_schedule = []\n'
        '[destinations.log]\nhandler = "handlers.log:print_event"\n'
        '[[routes]]\nname = "done"\nstatus = "completed"\nto = ["sink"]\n'
    )


def wait_until(check: Callable[[], bool], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not true in time"
        time.sleep(0.1)


def cli_json(workdir: Path, *args: str) -> Any:
    result = run_cli(*args, "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_operator_commands(tmp_path: Path) -> None:
    sink = Sink(script=lambda n: Reply(500 if n == 0 else 200))
    with running(sink.app, lifespan="off") as sink_url:
        (tmp_path / "photohook.toml").write_text(config(sink_url))
        checked = run_cli("check", cwd=tmp_path).stdout
        assert f"destination sink: {sink_url}/hook" in checked
        assert "unsigned: no secret is configured" in checked
        assert "route done: status in [completed] -> sink" in checked

        serve = Serve(tmp_path)
        serve.start()
        try:
            url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
            [event_id] = httpx.post(url, json=fixture("fotor/upscale-completed")).json()[
                "event_ids"
            ]
            wait_until(lambda: bool(cli_json(tmp_path, "deliveries", "--state", "dead")))
            [dead] = cli_json(tmp_path, "deliveries", "--state", "dead")
            assert (dead["event_id"], dead["last_status"]) == (event_id, 500)
            statuses = {d["name"]: d for d in cli_json(tmp_path, "destinations")}
            assert statuses["sink"]["success_rate"] == 0
            assert statuses["sink"]["last_error"] == "HTTP 500"
            assert statuses["log"]["state"] == "active"

            requeued = run_cli("retry", "--dead", "--destination", "sink", cwd=tmp_path)
            assert requeued.stdout == "queued 1 dead delivery again\n"
            wait_until(lambda: sink.ids == [event_id, event_id])
            assert run_cli("retry", dead["id"], cwd=tmp_path).returncode == 1  # not dead now

            replayed = run_cli("replay", event_id, cwd=tmp_path)
            assert replayed.returncode == 0, replayed.stderr
            assert replayed.stdout.strip().endswith("-> sink")
            to_log = run_cli("replay", event_id, "--destination", "log", cwd=tmp_path)
            assert to_log.stdout.strip().endswith("-> log")
            wait_until(lambda: len(sink.ids) == 3)
            in_progress = fixture("fotor/upscale-in-progress") | {"taskId": "other-task"}
            [unrouted] = httpx.post(url, json=in_progress).json()["event_ids"]
            nowhere = run_cli("replay", unrouted, cwd=tmp_path)
            assert nowhere.returncode == 1
            assert "no route sends" in nowhere.stderr

            assert run_cli("pause", "sink", cwd=tmp_path).stdout == "sink: paused\n"
            [held_event] = httpx.post(url, json=fixture("fotor/avatar-completed")).json()[
                "event_ids"
            ]
            wait_until(
                lambda: (
                    [d["state"] for d in cli_json(tmp_path, "deliveries", "--event", held_event)]
                    == ["held"]
                )
            )
            assert held_event not in sink.ids
            assert run_cli("resume", "sink", cwd=tmp_path).stdout == "sink: active\n"
            wait_until(lambda: held_event in sink.ids)
            table = run_cli("deliveries", cwd=tmp_path).stdout.splitlines()
            assert table[0].split() == [
                "ID",
                "STATE",
                "DESTINATION",
                "EVENT",
                "ATTEMPTS",
                "LAST",
                "NEXT",
            ]
            assert run_cli("pause", "nope", cwd=tmp_path).returncode == 1
        finally:
            serve.stop()


def test_serve_without_worker_beside_a_worker_process(tmp_path: Path) -> None:
    sink = Sink()
    with running(sink.app, lifespan="off") as sink_url:
        (tmp_path / "photohook.toml").write_text(config(sink_url))
        serve = Serve(tmp_path, "--no-worker")
        worker = Worker(tmp_path)
        serve.start()
        try:
            url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
            ids = [
                httpx.post(
                    url, json=fixture("fotor/upscale-completed") | {"taskId": f"w-{i}"}
                ).json()["event_ids"][0]
                for i in range(5)
            ]
            time.sleep(1.0)
            assert sink.ids == []  # nobody delivers yet
            worker.start()
            wait_until(lambda: sorted(sink.ids) == sorted(ids))
            worker.signal(signal.SIGTERM)
            assert worker.wait() in (0, -signal.SIGTERM)
        finally:
            worker.stop()
            serve.stop()
