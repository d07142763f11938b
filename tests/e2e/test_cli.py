"""The ``photohook`` commands as processes: ``url``, ``check``, ``events``, ``send-test``,
``prune``, ``track``; and the delivery commands beside a running ``photohook serve``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from receiver.store import Attempt, EventQuery, Outcome, Tracking, open_store
from tests.helpers import fixture
from tests.integration.servers import Reply, Sink, running
from tests.store.factories import aged

from .process import Serve, Worker, run_cli, wait_until
from .test_operating import on_a_terminal


def test_url_prints_only_the_url_and_the_same_one_every_time(tmp_path: Path) -> None:
    assert run_cli("migrate", cwd=tmp_path).returncode == 0
    first = run_cli("url", "fotor", "--base-url", "https://hooks.example.com/", cwd=tmp_path)
    second = run_cli("url", "fotor", "--base-url", "https://hooks.example.com", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    lines = first.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("https://hooks.example.com/hooks/fotor/")
    other = run_cli("url", "cropphoto", "--base-url", "https://h", cwd=tmp_path).stdout
    assert other.rsplit("/", 1)[1] != lines[0].rsplit("/", 1)[1]


def test_url_uses_photohook_secret_keys(tmp_path: Path) -> None:
    env = {"PHOTOHOOK_SECRET_KEYS": "k-new,k-old"}
    one = run_cli("url", "fotor", cwd=tmp_path, env=env).stdout
    two = run_cli("url", "fotor", cwd=tmp_path, env={"PHOTOHOOK_SECRET_KEYS": "k-new"}).stdout
    assert one.startswith("http://127.0.0.1:8000/hooks/fotor/")
    assert not (tmp_path / "photohook.db").exists()  # the keys are given: no database needed
    assert run_cli("migrate", cwd=tmp_path).returncode == 0
    generated = run_cli("url", "fotor", cwd=tmp_path).stdout
    assert one == two != generated


def test_url_without_token_check_and_unknown_source(tmp_path: Path) -> None:
    (tmp_path / "photohook.toml").write_text(
        '[sources.crop]\nkind = "cropphoto"\nsecrets = ["abc"]\n'
    )
    assert run_cli("url", "crop", cwd=tmp_path).stdout == "http://127.0.0.1:8000/hooks/crop\n"
    missing = run_cli("url", "fotor", cwd=tmp_path)
    assert missing.returncode == 1 and "no source named 'fotor'" in missing.stderr


def test_bad_config_stops_serve_and_check_with_a_precise_message(tmp_path: Path) -> None:
    (tmp_path / "photohook.toml").write_text("[sources.fotor]\nrequire = ['tokn']\n")
    for command in (["check"], ["serve", "--port", "1"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode == 2
        assert "photohook.toml: sources.fotor.require: unknown check 'tokn'" in result.stderr


def test_check_prints_sources(tmp_path: Path) -> None:
    (tmp_path / "photohook.toml").write_text(
        '[sources.fotor]\nrequire = ["token", "ip"]\n\n'
        '[sources.crop]\nkind = "cropphoto"\nsecrets = ["env:CROP_SECRET"]\n'
    )
    result = run_cli("check", cwd=tmp_path, env={"CROP_SECRET": "hush-hush"})
    assert result.returncode == 0, result.stderr
    assert "source fotor: kind fotor, checks: ip, token" in result.stdout
    assert "54.212.95.175/32" in result.stdout
    assert "source crop: kind cropphoto, checks: secret" in result.stdout
    assert "hush-hush" not in result.stdout


def test_events_lists_and_filters(tmp_path: Path) -> None:
    server = Serve(tmp_path)
    server.start()
    try:
        url = run_cli("url", "fotor", "--base-url", server.base_url, cwd=tmp_path).stdout.strip()
        import httpx

        for name in (
            "fotor/upscale-in-progress",
            "fotor/upscale-completed",
            "fotor/avatar-completed",
        ):
            assert httpx.post(url, json=fixture(name)).status_code == 200
    finally:
        server.stop()
    listed = json.loads(run_cli("events", "--json", cwd=tmp_path).stdout)
    assert [e["type"] for e in listed] == [
        "fotor.task.completed",
        "fotor.task.completed",
        "fotor.task.in_progress",
    ]
    completed = run_cli(
        "events",
        "--status",
        "completed",
        "--task-id",
        fixture("fotor/avatar-completed")["taskId"],
        "--json",
        cwd=tmp_path,
    ).stdout
    assert [e["task_type"] for e in json.loads(completed)] == ["avatar"]
    table = run_cli("events", "--limit", "1", cwd=tmp_path).stdout.splitlines()
    assert table[0].startswith("ID") and len(table) == 2
    assert run_cli("events", "--source", "cropphoto", cwd=tmp_path).stdout == "no events\n"


def test_send_test_and_prune(tmp_path: Path) -> None:
    server = Serve(tmp_path)
    server.start()
    try:
        url = run_cli("url", "fotor", "--base-url", server.base_url, cwd=tmp_path).stdout.strip()
        sent = run_cli(
            "send-test", "fotor", "--url", url, "--count", "120", "--concurrency", "8", cwd=tmp_path
        )
        assert sent.returncode == 0, sent.stderr
        assert "sent 120, accepted 120, duplicates 0" in sent.stdout
        assert "req/s; latency p50" in sent.stdout
        assert "sending:" not in sent.stderr  # piped: no progress
        status, stdout, shown = on_a_terminal(
            tmp_path, "send-test", "fotor", "--url", url, "--count", "120", "--concurrency", "8"
        )
        assert status == 0, shown
        assert "sending: [####################] 120/120 callbacks, " in shown
        assert "sent 120, accepted 120, duplicates 0" in stdout
        refused = run_cli("send-test", "fotor", "--url", url + "x", cwd=tmp_path)
        assert refused.returncode == 1
        assert "rejected by status: 401: 1" in refused.stdout
    finally:
        server.stop()
    dry = run_cli("prune", "--older-than", "7d", "--dry-run", cwd=tmp_path)
    assert dry.stdout == (
        "would delete 0 events, 0 requests, 0 deliveries, 0 attempts, 0 finished tasks, "
        "0 rejected requests\n"
    )
    assert run_cli("prune", "--older-than", "soon", cwd=tmp_path).returncode == 1
    (tmp_path / "photohook.toml").write_text('[server]\nretention = "1d"\n')
    short = run_cli("check", cwd=tmp_path)
    assert short.returncode == 2
    assert "server.retention: must be at least 7d" in short.stderr


async def test_prune_deletes_what_its_dry_run_counted(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'photohook.db'}")
    await store.open()
    try:
        await store.sync_destinations(["app"])
        delivered = await store.store(aged("old-delivered", 10, destinations=("app",)))
        await store.store(aged("old-waiting", 10, destinations=("app",)))
        await store.store(aged("old-unrouted", 9))
        await store.store(aged("recent", 6))
        claims, _ = await store.claim({"app": 10}, "w", 60, time.time())
        [done] = [c for c in claims if c.event.id in delivered.event_ids]
        attempt = Attempt(started_at=time.time(), duration_ms=1.0, ok=True, status_code=200)
        await store.finish(Outcome(done.delivery.id, "w", attempt, "delivered"))
        eight_days_ago = time.time() - 8 * 86400
        await store.track_task("fotor", "old-unrouted", None, Tracking(60, 3600), eight_days_ago)
    finally:
        await store.close()
    counts = (
        "2 events, 2 requests, 1 deliveries, 1 attempts, 1 finished tasks, 0 rejected requests\n"
    )

    dry = await asyncio.to_thread(run_cli, "prune", "--older-than", "7d", "--dry-run", cwd=tmp_path)
    assert (dry.returncode, dry.stdout) == (0, f"would delete {counts}")
    pruned = await asyncio.to_thread(run_cli, "prune", "--older-than", "7d", cwd=tmp_path)
    assert (pruned.returncode, pruned.stdout) == (0, f"deleted {counts}")
    again = await asyncio.to_thread(
        run_cli, "prune", "--older-than", "7d", "--dry-run", cwd=tmp_path
    )
    assert again.stdout.startswith("would delete 0 events, 0 requests, 0 deliveries, 0 attempts")

    store = open_store(f"sqlite:///{tmp_path / 'photohook.db'}")
    await store.open()
    try:
        kept = sorted(e.task_id for e in await store.list_events(EventQuery()))
        assert kept == ["old-waiting", "recent"]
        assert await store.list_tasks() == []
    finally:
        await store.close()


def test_track_tasks_and_check_the_reconciling(tmp_path: Path) -> None:
    (tmp_path / "photohook.toml").write_text(
        '[sources.fotor]\napi_key = "env:FOTOR_API_KEY"\n[sources.crop]\nkind = "cropphoto"\n'
    )
    env = {"FOTOR_API_KEY": "secret-api-key"}
    checked = run_cli("check", cwd=tmp_path, env=env)
    assert "reconciled with https://api-b.fotor.com: first check after 10m, lost after 2d" in (
        checked.stdout
    )
    assert "not reconciled: no api_key" in checked.stdout
    assert "secret-api-key" not in checked.stdout
    assert run_cli("migrate", cwd=tmp_path).returncode == 0
    tracked = run_cli(
        "track", "fotor", "task-42", "--business-id", "order-9", cwd=tmp_path, env=env
    )
    assert tracked.stdout == "fotor task-42: tracked\n"
    refused = run_cli("track", "crop", "job-1", cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "no api_key" in refused.stderr
    [task] = json.loads(run_cli("tasks", "--json", cwd=tmp_path, env=env).stdout)
    assert (task["task_id"], task["business_id"], task["state"]) == (
        "task-42",
        "order-9",
        "tracked",
    )
    table = run_cli("tasks", "--state", "tracked", cwd=tmp_path, env=env).stdout.splitlines()
    assert table[0].split()[:3] == ["SOURCE", "TASK", "STATE"]


_INTERRUPTED_WRITER = """
import signal
from receiver.cli._common import stdout_bytes

signal.signal(signal.SIGALRM, lambda *_: None)
signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)  # a blocked write is cut short, often
data = bytes(range(256)) * (16 * 1024)  # 4 MiB, far more than a pipe holds
with stdout_bytes() as out:
    out.write(data)
signal.setitimer(signal.ITIMER_REAL, 0)
"""


def test_stdout_gets_every_byte_when_python_is_unbuffered() -> None:
    # Unbuffered, sys.stdout.buffer is the raw file: a write cut short by a signal (or, it
    # seems, by io_uring work the event loop left behind) took only part of a large output, and
    # `events --json` came back truncated with exit status 0.
    with subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED_WRITER],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as child:
        assert child.stdout is not None
        received = bytearray()
        while chunk := child.stdout.read(4096):
            received += chunk
            time.sleep(0.0002)  # a slow reader keeps the pipe full
        assert child.wait(30) == 0
    assert bytes(received) == bytes(range(256)) * (16 * 1024)


def config(sink_url: str) -> str:
    return (
        "[server]\nallow_private_destinations = true\n"
        f'[destinations.sink]\nurl = "{sink_url}/hook"\nretry_schedule = []\n'
        '[destinations.log]\nhandler = "handlers.log:print_event"\n'
        '[[routes]]\nname = "done"\nstatus = "completed"\nto = ["sink"]\n'
    )


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
