"""The operator's command line, as a subprocess: piped output, progress, what the database
commands say they did; and replaying an event, as the same message by default, as a new one
with ``--new-id``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import re
import select
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.signing import new_secret
from receiver.store import Receipt, open_store
from receiver.store.migrations import migrations
from tests.helpers import fixture, free_port
from tests.integration.servers import Sink, running
from tests.store.factories import receipt

from .process import COMMAND, Serve, Worker, run_cli, wait_until


def fill(workdir: Path, events: int, *, days_old: float = 0) -> None:
    """``events`` events (each its own task) in ``workdir``'s default SQLite database, received
    ``days_old`` days ago."""
    received_at = datetime.now(UTC) - timedelta(days=days_old)

    def aged(new: Receipt) -> Receipt:
        return msgspec.structs.replace(
            new,
            received_at=received_at,
            events=tuple(
                msgspec.structs.replace(e, event=replace(e.event, received_at=received_at))
                for e in new.events
            ),
        )

    async def run() -> None:
        store = open_store(f"sqlite:///{workdir / 'photohook.db'}")
        await store.open()
        try:
            for first in range(0, events, 250):
                batch = range(first, min(first + 250, events))
                await asyncio.gather(*(store.store(aged(receipt(f"task-{n}"))) for n in batch))
        finally:
            await store.close()

    asyncio.run(run())


def on_a_terminal(workdir: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run ``photohook ARGS`` with its stderr on a pseudo-terminal and ``stdin`` (if given) on a
    pipe: (status, stdout, what the terminal showed)."""
    controller, terminal = pty.openpty()
    try:
        with subprocess.Popen(
            [*COMMAND, *args],
            cwd=workdir,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=terminal,
        ) as child:
            os.close(terminal)
            terminal = -1
            if stdin is not None:
                assert child.stdin is not None
                feeding = threading.Thread(target=_feed, args=(child.stdin, stdin), daemon=True)
                feeding.start()
            shown = bytearray()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                ready, _, _ = select.select([controller], [], [], 1)
                if not ready:
                    continue
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: every holder of the terminal's end has closed it
                    break
                if not chunk:
                    break
                shown += chunk
            assert child.stdout is not None
            stdout = child.stdout.read().decode()
            status = child.wait(30)
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    return status, stdout, shown.decode()


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError), pipe:
        pipe.write(data)


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    fill(tmp_path, 1500)  # each listing is several times what a pipe holds
    for args in (
        ["events", "--limit", "1500"],
        ["events", "--json", "--limit", "1500"],
        ["export"],
    ):
        with subprocess.Popen(
            [*COMMAND, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as child:
            assert child.stdout is not None and child.stderr is not None
            assert child.stdout.readline()  # `| head -1`
            child.stdout.close()
            status = child.wait(60)
            errors = child.stderr.read().decode()
        assert "Traceback" not in errors, (args, errors)
        assert "BrokenPipeError" not in errors, (args, errors)
        assert status == 141, (args, status, errors)  # 128 + SIGPIPE, as a shell reports it


def test_migrate_says_whether_it_created_migrated_or_found_the_schema_up_to_date(
    tmp_path: Path,
) -> None:
    shipped = migrations("sqlite")
    latest = shipped[-1].version
    created = run_cli("migrate", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout == (
        f"created the database at sqlite:///photohook.db (schema version {latest})\n"
    )
    again = run_cli("migrate", cwd=tmp_path)
    assert again.stdout == f"sqlite:///photohook.db: already up to date (schema version {latest})\n"

    with contextlib.closing(sqlite3.connect(tmp_path / "older.db")) as older:
        older.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        for migration in shipped[:-1]:
            older.executescript(migration.sql)
            older.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00Z')",
                (migration.version, migration.name),
            )
        older.commit()
    migrated = run_cli("migrate", "--db", "sqlite:///older.db", cwd=tmp_path)
    assert migrated.stdout == (
        f"migrated sqlite:///older.db from schema version {shipped[-2].version} to {latest}\n"
    )


def test_event_shows_its_deliveries_and_each_attempt_with_the_answer(tmp_path: Path) -> None:
    answers = iter([(503, b"busy \x1b[31mred\x1b[0m, later"), (200, b'{"saved": true}')])

    async def hook(request: Request) -> Response:
        status, body = next(answers, (200, b""))
        return Response(body, status_code=status)

    sink = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with running(sink, lifespan="off") as sink_url:
        (tmp_path / "photohook.toml").write_text(
            "[server]\nallow_private_destinations = true\n"
            f'[destinations.app]\nurl = "{sink_url}/hook"\nretry_schedule = ["0.1s"]\n'
            '[[routes]]\nstatus = "completed"\nto = ["app"]\n'
        )
        serve = Serve(tmp_path)
        serve.start()
        try:
            url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
            body = fixture("fotor/upscale-completed")
            [event_id] = httpx.post(url, json=body, timeout=10).json()["event_ids"]
            wait_until(lambda: "app: delivered" in run_cli("event", event_id, cwd=tmp_path).stdout)
        finally:
            serve.stop()

    shown = run_cli("event", event_id, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"event {event_id}"
    assert f"  task:        {body['taskId']} (upscale)" in lines
    [delivery] = [line for line in lines if line.startswith("delivery ")]
    assert delivery.endswith(" to app: delivered, 2 attempts")
    [first, second] = [line for line in lines if line.startswith("  #")]
    assert first.startswith("  #1 ") and "  HTTP 503  " in first and first.endswith("  HTTP 503")
    assert second.startswith("  #2 ") and "  HTTP 200  " in second and second.endswith("  ok")
    # The answer's body, with what a terminal would obey spelled out.
    assert "     body: busy \\x1b[31mred\\x1b[0m, later" in lines
    assert '     body: {"saved": true}' in lines
    assert "\x1b" not in shown.stdout

    detail = json.loads(run_cli("event", event_id, "--json", cwd=tmp_path).stdout)
    assert detail["event"]["id"] == event_id
    [history] = [d["history"] for d in detail["deliveries"]]
    assert [(a["status_code"], a["response_body"]) for a in history] == [
        (503, "busy \x1b[31mred\x1b[0m, later"),
        (200, '{"saved": true}'),
    ]
    missing = run_cli("event", "evt_nope", cwd=tmp_path)
    assert missing.returncode == 1 and "no event 'evt_nope'" in missing.stderr


def test_events_take_the_filters_of_the_admin_api(tmp_path: Path) -> None:
    async def run() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'photohook.db'}")
        await store.open()
        try:
            await store.store(receipt("task-a", "completed"))
            await store.store(receipt("task-b", "failed"))
        finally:
            await store.close()

    asyncio.run(run())

    def tasks(*filters: str) -> list[str]:
        result = run_cli("events", "--json", *filters, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return sorted(event["task_id"] for event in json.loads(result.stdout))

    assert tasks() == ["task-a", "task-b"]
    assert tasks("--type", "fotor.task.failed") == ["task-b"]
    assert tasks("--business-id", "order-1") == ["task-a", "task-b"]
    assert tasks("--business-id", "order-2") == []
    assert tasks("--since", "2000-01-01T00:00:00Z", "--until", "2999-01-01T00:00:00Z") == [
        "task-a",
        "task-b",
    ]
    assert tasks("--since", "2999-01-01T00:00:00Z") == []
    assert tasks("--until", "2000-01-01") == []
    bad = run_cli("events", "--since", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2
    assert "--since: since must be an RFC 3339 time" in bad.stderr
    assert "Traceback" not in bad.stderr
    unknown = run_cli("events", "--status", "done", cwd=tmp_path)
    assert unknown.returncode == 2 and "--status: status must be one of" in unknown.stderr


LOGGED = '[destinations.log]\nhandler = "handlers.log:print_event"\n'


def test_long_commands_show_progress_on_a_terminal_and_only_their_summary_when_piped(
    tmp_path: Path,
) -> None:
    done = "[####################]"
    commands: list[tuple[list[str], str, str]] = [  # (arguments, progress, summary)
        (
            ["export", "--output", "out.jsonl"],
            f"exporting: {done} 2400/2400 rows, ",
            "exported 1200 receipts, 1200 events in ",
        ),
        (
            ["import", "out.jsonl", "--db", "sqlite:///copy.db"],
            f"importing: {done} 2400/2400 rows, ",
            "imported 1200 new receipts; 1200 new events into sqlite:///copy.db in ",
        ),
        (
            [
                "replay",
                "--status",
                "completed",
                "--destination",
                "log",
                "--db",
                "sqlite:///copy.db",
            ],
            "replaying: 500 events, ",  # how many match is not known beforehand
            "replayed 1200 events: 1200 new deliveries",
        ),
        (
            ["prune", "--older-than", "7d"],
            f"pruning: {done} 1200/1200 events, ",
            "deleted 1200 events, 1200 requests",
        ),
    ]
    terminal, piped = tmp_path / "terminal", tmp_path / "piped"
    for workdir in (terminal, piped):
        workdir.mkdir()
        (workdir / "photohook.toml").write_text(LOGGED)
        fill(workdir, 1200, days_old=10)
    # Each command finds the databases as the one before left them.
    for args, progress, summary in commands:
        status, stdout, shown = on_a_terminal(terminal, *args)
        assert status == 0, (args, stdout, shown)
        assert progress in shown, (args, shown)
        assert re.search(r", \d+ (rows|events)/s", shown), (args, shown)  # the rate
        assert summary in stdout + shown, (args, stdout, shown)

        result = run_cli(*args, cwd=piped)
        assert result.returncode == 0, (args, result.stderr)
        assert progress not in result.stderr and "\r" not in result.stderr, (args, result.stderr)
        assert summary in result.stdout + result.stderr, (args, result.stdout, result.stderr)


def test_an_import_from_a_pipe_on_a_terminal_shows_progress_without_a_total(
    tmp_path: Path,
) -> None:
    fill(tmp_path, 300)
    assert run_cli("export", "--output", "out.jsonl", cwd=tmp_path).returncode == 0
    export = (tmp_path / "out.jsonl").read_bytes()
    # `photohook import <(zcat export.gz)` names a pipe; without a path, stdin is one.
    for path, copy in ((["/dev/stdin"], "named.db"), ([], "stdin.db")):
        status, stdout, shown = on_a_terminal(
            tmp_path, "import", *path, "--db", f"sqlite:///{copy}", stdin=export
        )
        assert "Traceback" not in shown, (path, shown)
        assert status == 0, (path, stdout, shown)
        assert re.search(r"importing: \d+ rows, \d+ rows/s", shown), (path, shown)
        assert "#" not in shown and "/300" not in shown, shown  # no total: it is not known
        assert f"imported 300 new receipts; 300 new events into sqlite:///{copy}" in stdout


def test_a_worker_process_serves_its_own_metrics(tmp_path: Path) -> None:
    sink = Sink()
    with running(sink.app, lifespan="off") as sink_url:
        (tmp_path / "photohook.toml").write_text(
            "[server]\nallow_private_destinations = true\n"
            f'[destinations.sink]\nurl = "{sink_url}/hook"\n'
            '[[routes]]\nstatus = "completed"\nto = ["sink"]\n'
        )
        metrics_port = free_port()
        token = "metrics-admin-token"
        env = {"PHOTOHOOK_METRICS_PORT": str(metrics_port), "PHOTOHOOK_ADMIN_TOKEN": token}
        serve = Serve(tmp_path, "--no-worker", env={"PHOTOHOOK_ADMIN_TOKEN": token})
        worker = Worker(tmp_path, env=env)
        serve.start()
        try:
            worker.start()
            scrape = f"http://127.0.0.1:{metrics_port}/metrics"
            refused = httpx.get(scrape, timeout=10)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "unauthorized"
            url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
            [event_id] = httpx.post(
                url, json=fixture("fotor/upscale-completed"), timeout=10
            ).json()["event_ids"]
            wait_until(lambda: sink.ids == [event_id])
            bearer = {"Authorization": f"Bearer {token}"}
            delivered = (
                'photohook_delivery_attempts_total{destination="sink",outcome="delivered"} 1.0'
            )
            wait_until(lambda: delivered in httpx.get(scrape, headers=bearer, timeout=10).text)
            text = httpx.get(scrape, headers=bearer, timeout=10).text
            assert (
                'photohook_delivery_attempt_duration_seconds_count{destination="sink"} 1.0' in text
            )
            assert 'photohook_queue_depth{destination="sink"} 0.0' in text
            served = httpx.get(f"{serve.base_url}/metrics", headers=bearer, timeout=10).text
            assert (
                'photohook_callbacks_total{outcome="accepted",reason="",source="fotor"}' in served
            )
            for exposition in (text, served):
                assert "process_cpu_seconds_total" in exposition
                assert "process_resident_memory_bytes" in exposition
                assert "python_info{" in exposition
                assert "python_gc_collections_total" in exposition
                assert "_created" not in exposition
            taken = run_cli("worker", cwd=tmp_path, env=env)
            assert taken.returncode == 2
            assert f"cannot serve metrics on 127.0.0.1:{metrics_port}: " in taken.stderr
            assert "Traceback" not in taken.stderr
            worker.signal(signal.SIGTERM)
            assert worker.wait() == 0
        finally:
            worker.stop()
            serve.stop()
    assert "Traceback" not in worker.log.read_text()


def _ipv6_loopback_port() -> int | None:
    """A free port on ``::1``, or None where this machine has no IPv6 loopback."""
    if not socket.has_ipv6:
        return None
    try:
        with socket.create_server(("::1", 0), family=socket.AF_INET6) as probe:
            port: int = probe.getsockname()[1]
            return port
    except OSError:
        return None


def test_a_worker_serves_its_metrics_on_an_ipv6_host(tmp_path: Path) -> None:
    port = _ipv6_loopback_port()
    if port is None:
        pytest.skip("this machine has no IPv6 loopback (::1) to listen on")
    (tmp_path / "photohook.toml").write_text(LOGGED)
    worker = Worker(tmp_path, env={"PHOTOHOOK_HOST": "::1", "PHOTOHOOK_METRICS_PORT": str(port)})
    try:
        worker.start()
        assert f"metrics at http://[::1]:{port}/metrics" in worker.log.read_text()
        scraped = httpx.get(f"http://[::1]:{port}/metrics", timeout=10)
        assert scraped.status_code == 200
        assert 'photohook_queue_depth{destination="log"} 0.0' in scraped.text
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    finally:
        worker.stop()
    assert "Traceback" not in worker.log.read_text()


def test_a_worker_whose_metrics_host_does_not_resolve_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "photohook.toml").write_text(LOGGED)
    port = free_port()
    # A space makes the resolver refuse the name itself, without asking a DNS server.
    env = {"PHOTOHOOK_HOST": "no such host", "PHOTOHOOK_METRICS_PORT": str(port)}
    assert run_cli("migrate", cwd=tmp_path).returncode == 0
    result = run_cli("worker", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"photohook: error: cannot serve metrics on no such host:{port}:"
        " Name or service not known\n"
    )


def test_retrying_every_rejected_request_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    config = tmp_path / "photohook.toml"
    config.write_text('[sources.vendor]\nkind = "cropphoto"\n')  # Fotor's callbacks: refused
    serve = Serve(tmp_path)
    serve.start()
    try:
        url = run_cli("url", "vendor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
        for index in range(3):
            body = fixture("fotor/upscale-completed") | {"taskId": f"kept-{index}"}
            assert httpx.post(url, json=body, timeout=10).status_code == 422
    finally:
        serve.stop()
    config.write_text('[sources.vendor]\nkind = "fotor"\n')
    status, stdout, shown = on_a_terminal(tmp_path, "rejected", "retry", "--all")
    assert status == 0, (stdout, shown)
    assert "retrying: 1 requests, " in shown and " requests/s" in shown
    assert stdout == "3 accepted, 0 duplicate, 0 rejected\n"


def test_replay_keeps_the_webhook_id_unless_asked_for_a_new_one(tmp_path: Path) -> None:
    secret = new_secret()
    sink = Sink(secret=secret)
    with running(sink.app, lifespan="off") as sink_url:
        (tmp_path / "photohook.toml").write_text(
            f'[destinations.app]\nurl = "{sink_url}/hook"\nallow_private = true\n'
            'secret = "env:APP_SECRET"\n[[routes]]\nto = ["app"]\n'
        )
        serve = Serve(tmp_path, env={"APP_SECRET": secret})
        serve.start()
        try:
            url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout
            response = httpx.post(url.strip(), json=fixture("fotor/upscale-completed"))
            [event_id] = response.json()["event_ids"]
            wait_until(lambda: len(sink.received) == 1)

            kept = run_cli("replay", event_id, cwd=tmp_path)
            assert kept.returncode == 0, kept.stderr
            wait_until(lambda: len(sink.received) == 2)
            renewed = run_cli("replay", event_id, "--new-id", cwd=tmp_path)
            assert renewed.returncode == 0, renewed.stderr
            wait_until(lambda: len(sink.received) == 3)
            api = f"{serve.base_url}/api/events/{event_id}/replay"
            assert httpx.post(api, json={"new_id": True}).status_code == 200
            wait_until(lambda: len(sink.received) == 4)
            refused = httpx.post(api, json={"new_id": "yes"})
            assert refused.status_code == 422
            assert refused.json()["error"]["field"] == "new_id"
        finally:
            serve.stop()
    ids = [received.webhook_id for received in sink.received]
    assert ids[0] == ids[1] == event_id
    assert ids[2] != event_id and ids[3] not in (event_id, ids[2])
    assert all(i.startswith("msg_") for i in ids[2:])
    assert [received.verified for received in sink.received] == [True] * 4
    assert len({received.body for received in sink.received}) == 1  # the same event each time
