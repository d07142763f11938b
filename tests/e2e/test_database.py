"""``photohook migrate``, ``export`` and ``import``: moving a SQLite database to PostgreSQL."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

from tests.helpers import fixture, free_port

from .process import Serve, Worker, run_cli

ROUTED = (
    '[destinations.log]\nhandler = "handlers.log:print_event"\n'
    '[[routes]]\nstatus = ["completed"]\nto = ["log"]\n'
)


def test_worker_refuses_an_unmigrated_database_until_migrate(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {"PHOTOHOOK_DATABASE_URL": postgres_url}
    refused = run_cli("worker", "--no-migrate", cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "run 'photohook migrate'" in refused.stderr
    migrated = run_cli("migrate", cwd=tmp_path, env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("created the database at postgresql://")
    assert "(schema version " in migrated.stdout
    again = run_cli("migrate", cwd=tmp_path, env=env)
    assert "already up to date" in again.stdout
    worker = Worker(tmp_path, "--no-migrate", env=env)
    worker.start()
    worker.signal(signal.SIGTERM)
    assert worker.wait() in (0, -signal.SIGTERM)


def test_a_sqlite_database_moves_to_postgres_with_nothing_lost(
    tmp_path: Path, postgres_url: str
) -> None:
    (tmp_path / "photohook.toml").write_text(ROUTED)
    serve = Serve(tmp_path)
    serve.start()
    try:
        url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
        for index in range(30):
            body = fixture("fotor/upscale-completed") | {
                "taskId": f"t{index}",
                "status": index % 3,
            }
            assert httpx.post(url, json=body, timeout=10).status_code == 200
        assert httpx.post(url, json=body | {"extra": 1}, timeout=10).status_code == 200
        refused = httpx.post(url, content=b'{"taskId": "t", "status": 1,\xff', timeout=10)
        assert refused.status_code == 415  # kept, its body not UTF-8: it travels as bytes
    finally:
        serve.signal(signal.SIGTERM)
        serve.wait()
    before = _listing(tmp_path, {})

    dump = tmp_path / "photohook.jsonl"
    exported = run_cli("export", "--output", str(dump), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "30 events" in exported.stderr and "1 rejected" in exported.stderr
    to_stdout = run_cli("export", cwd=tmp_path)  # the same stream, every byte of it
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.encode() == dump.read_bytes()

    env = {"PHOTOHOOK_DATABASE_URL": postgres_url}
    lines = dump.read_bytes().splitlines(keepends=True)
    (tmp_path / "cut.jsonl").write_bytes(b"".join(lines[: len(lines) // 2]))
    cut = run_cli("import", str(tmp_path / "cut.jsonl"), cwd=tmp_path, env=env)
    assert cut.returncode == 1
    assert "ends early" in cut.stderr
    imported = run_cli("import", str(dump), cwd=tmp_path, env=env)  # after an interrupted one
    assert imported.returncode == 0, imported.stderr
    added = int(imported.stdout.split(" new events, ")[0].rsplit(" ", 1)[1])
    assert 0 < added < 30
    assert f"{added} new events, {30 - added} already present" in imported.stdout
    again = run_cli("import", str(dump), cwd=tmp_path, env=env)  # once more: each row once
    assert again.returncode == 0, again.stderr
    assert "0 new events, 30 already present" in again.stdout
    assert "0 new rejected, 1 already present" in again.stdout

    assert _listing(tmp_path, env) == before
    # The URL registered with the provider stays the same: its key moved with the data.
    assert (
        run_cli("url", "fotor", cwd=tmp_path, env=env).stdout
        == run_cli("url", "fotor", cwd=tmp_path).stdout
    )


def test_import_refuses_what_is_not_an_export(tmp_path: Path, postgres_url: str) -> None:
    env = {"PHOTOHOOK_DATABASE_URL": postgres_url}
    header = b'{"format":"photohook-export","version":1}\n'
    for content, message in (
        (b"hello\n", "line 1: not JSON"),
        (b'{"format":"other"}\n', "not a photohook export"),
        (header + b'{"table":"users","row":{}}\n', "line 2: expected a row of a known table"),
        (header + b'{"table":"events","row":[1]}\n', "line 2: its row is not an object"),
        (header + b'["end"]\n', "line 2: expected a row of a known table"),
        (header + b"7\n", "line 2: expected a row of a known table"),
    ):
        (tmp_path / "bad.jsonl").write_bytes(content)
        result = run_cli("import", str(tmp_path / "bad.jsonl"), cwd=tmp_path, env=env)
        assert result.returncode == 1, result.stderr
        assert message in result.stderr


def _listing(workdir: Path, env: dict[str, str]) -> dict[str, object]:
    events = run_cli("events", "--json", "--limit", "1000", cwd=workdir, env=env)
    deliveries = run_cli("deliveries", "--json", "--limit", "1000", cwd=workdir, env=env)
    rejected = run_cli("rejected", "--json", cwd=workdir, env=env)
    assert events.returncode == 0 and deliveries.returncode == 0, events.stderr + deliveries.stderr
    assert rejected.returncode == 0, rejected.stderr
    return {
        "events": json.loads(events.stdout),
        "deliveries": json.loads(deliveries.stdout),
        "rejected": json.loads(rejected.stdout),
    }


def test_serve_refuses_an_unreachable_or_unmigrated_database_in_one_line(
    tmp_path: Path, postgres_url: str
) -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    for url, expected in (
        (nobody, "cannot open the PostgreSQL database"),
        (postgres_url, "run 'photohook migrate'"),
    ):
        result = run_cli(
            "serve",
            "--no-migrate",
            "--port",
            str(free_port()),
            cwd=tmp_path,
            env={"PHOTOHOOK_DATABASE_URL": url},
        )
        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("photohook: error: ")
        assert expected in result.stderr
        assert "Traceback" not in result.stderr
