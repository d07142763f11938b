"""Registering as the README tells it: commands find the server's database and its address."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.helpers import fixture

from .process import Serve, run_cli

ROOT = Path(__file__).parents[2]
GUIDES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Variables the guides name for the test suite, not for photohook.
TEST_SUITE_VARIABLES = {
    "PHOTOHOOK_TEST_POSTGRES_URL",
    "PHOTOHOOK_TEST_RABBITMQ_URL",
    "PHOTOHOOK_TEST_REDIS_URL",
    "PHOTOHOOK_TEST_NATS_URL",
    "PHOTOHOOK_LONG",
    "PHOTOHOOK_UPDATE_GOLDEN",
}

#: Commands that read or change a database and so must find one, never make one.
USERS_OF_A_DATABASE = (
    ("url", "fotor"),
    ("events",),
    ("deliveries",),
    ("replay", "evt_01M80W3GZPZC898DXSJE9ZSD5Q"),
    ("retry", "--dead"),
    ("destinations",),
    ("pause", "app"),
    ("resume", "app"),
    ("track", "fotor", "task-1"),
    ("tasks",),
    ("prune", "--older-than", "30d"),
    ("export",),
)


@pytest.mark.parametrize("command", USERS_OF_A_DATABASE, ids=lambda c: c[0])
def test_a_command_run_where_there_is_no_database_creates_none(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = run_cli(*command, cwd=tmp_path)
    assert result.returncode != 0
    assert "no photohook database at 'photohook.db'" in result.stderr
    assert "run 'photohook migrate' (or 'photohook serve')" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_empty_sqlite_file_is_no_database(tmp_path: Path) -> None:
    (tmp_path / "other.db").touch()
    result = run_cli("events", "--db", "sqlite:///other.db", cwd=tmp_path)
    assert result.returncode != 0
    assert "no photohook database at 'other.db'" in result.stderr


def test_a_postgres_database_without_the_schema_is_no_database(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {"PHOTOHOOK_DATABASE_URL": postgres_url}
    for command in (("url", "fotor"), ("events",), ("destinations",)):
        result = run_cli(*command, cwd=tmp_path, env=env)
        assert result.returncode != 0
        assert "no photohook schema there" in result.stderr
        assert "run 'photohook migrate'" in result.stderr
    migrated = run_cli("migrate", cwd=tmp_path, env=env)
    assert migrated.returncode == 0, migrated.stderr
    listed = run_cli("events", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == "no events\n"


def test_url_prints_the_address_serve_listens_on(tmp_path: Path) -> None:
    serve = Serve(tmp_path)
    serve.start()
    try:
        env = {"PORT": str(serve.port), "PHOTOHOOK_HOST": "127.0.0.1"}
        printed = run_cli("url", "fotor", cwd=tmp_path, env=env)
        assert printed.returncode == 0, printed.stderr
        url = printed.stdout.strip()
        assert url.startswith(f"http://127.0.0.1:{serve.port}/hooks/fotor/")
        assert httpx.post(url, json=fixture("fotor/upscale-completed")).status_code == 200
        chosen = run_cli(
            "url", "fotor", cwd=tmp_path, env={**env, "PHOTOHOOK_BASE_URL": "https://h.example/"}
        )
        assert chosen.stdout.startswith("https://h.example/hooks/fotor/")
    finally:
        serve.stop()


def test_help_lists_every_environment_variable_the_guides_document(tmp_path: Path) -> None:
    text = "".join(guide.read_text() for guide in GUIDES)
    documented = set(re.findall(r"\b(PHOTOHOOK_[A-Z_]+|PORT|WEB_CONCURRENCY)\b", text))
    documented -= TEST_SUITE_VARIABLES
    assert {"PORT", "WEB_CONCURRENCY", "PHOTOHOOK_DATABASE_URL"} <= documented
    shown = run_cli("--help", cwd=tmp_path)
    assert shown.returncode == 0
    listed = set(re.findall(r"^  ([A-Z_]+) ", shown.stdout, re.MULTILINE))
    assert sorted(documented - listed) == []


def test_secret_prints_a_secret_a_destination_takes_even_where_the_config_is_broken(
    tmp_path: Path,
) -> None:
    (tmp_path / "photohook.toml").write_text("[destinations.app]\nurl = 5\n")
    made = run_cli("secret", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert made.stdout == secret + "\n" and secret.startswith("whsec_")
    assert run_cli("secret", cwd=tmp_path).stdout.strip() != secret
    (tmp_path / "photohook.toml").write_text(
        '[destinations.app]\nurl = "https://app.example.com/hooks"\nsecret = "env:APP_SECRET"\n'
    )
    checked = run_cli("check", cwd=tmp_path, env={"APP_SECRET": secret})
    assert checked.returncode == 0, checked.stderr
    assert "unsigned" not in checked.stdout


SECRET_CONFIG = """
[sources.fotor]
api_key = "env:FOTOR_API_KEY"

[sources.crop]
kind = "cropphoto"
secrets = ["env:CROP_SECRET"]

[destinations.app]
url = "http://127.0.0.1:9/hooks"
allow_private = true
secret = "env:APP_WEBHOOK_SECRET"

[[routes]]
to = ["app"]
"""


def test_commands_that_only_read_need_no_secret_variable_set(tmp_path: Path) -> None:
    (tmp_path / "photohook.toml").write_text(SECRET_CONFIG)
    secrets = {
        "FOTOR_API_KEY": "fotor-key",
        "CROP_SECRET": "crop-secret",
        "APP_WEBHOOK_SECRET": "whsec_c2VjcmV0LWtleS1mb3ItdGhlLWFwcA==",
    }
    assert run_cli("migrate", cwd=tmp_path, env=secrets).returncode == 0
    unset = dict.fromkeys(secrets, "")
    for command in (
        ("events",),
        ("deliveries",),
        ("destinations",),
        ("tasks",),
        ("url", "fotor"),
        ("url", "crop"),
        ("pause", "app"),
        ("track", "fotor", "task-1"),
    ):
        result = run_cli(*command, cwd=tmp_path, env=unset)
        assert result.returncode == 0, (command, result.stderr)
    for command in (("check",), ("worker",), ("serve", "--port", "1")):
        refused = run_cli(*command, cwd=tmp_path, env=unset)
        assert refused.returncode == 2
        assert "environment variable FOTOR_API_KEY is not set" in refused.stderr
    checked = run_cli("check", cwd=tmp_path, env=secrets)
    assert checked.returncode == 0, checked.stderr
