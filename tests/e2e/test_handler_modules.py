"""Handler modules as a team writes them: beside ``photohook.toml``, in a ``handlers`` package of
its own, or with dependencies only the worker's machine has."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers import fixture

from .process import Serve, run_cli

RECORD = """
from pathlib import Path


def record(event, context):
    Path("delivered").mkdir(exist_ok=True)
    Path("delivered", event.id).write_text(f"{context.destination} {context.attempt}")
"""


def wait_until(check: Callable[[], bool], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not true in time"
        time.sleep(0.1)


def routed(**handlers: str) -> str:
    destinations = "".join(
        f'[destinations.{name}]\nhandler = "{target}"\n' for name, target in handlers.items()
    )
    return destinations + f"[[routes]]\nto = {json.dumps(list(handlers))}\n"


def deliver_one(project: Path) -> tuple[str, dict[str, str]]:
    """Runs serve in ``project``, sends a callback; the event id and its deliveries' states."""
    serve = Serve(project)
    serve.start()
    try:
        url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=project).stdout.strip()
        response = httpx.post(url, json=fixture("fotor/upscale-completed"))
        [event_id] = response.json()["event_ids"]

        def states() -> dict[str, str]:
            listed = run_cli("deliveries", "--json", cwd=project)
            return {d["destination"]: d["state"] for d in json.loads(listed.stdout)}

        wait_until(lambda: set(states().values()) == {"delivered"})
        return event_id, states()
    finally:
        serve.stop()


def test_a_handler_beside_the_config_file_is_imported_from_there(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "myapp").mkdir(parents=True)
    (project / "myapp" / "__init__.py").write_text("")
    (project / "myapp" / "hooks.py").write_text(RECORD)
    (project / "photohook.toml").write_text(
        routed(orders="myapp.hooks:record", log="handlers.log:print_event")
    )
    checked = run_cli("check", cwd=project)
    assert checked.returncode == 0, checked.stderr
    assert "destination orders: myapp.hooks:record" in checked.stdout

    elsewhere = ("check", "--config", str(project / "photohook.toml"))
    missing = run_cli(*elsewhere, cwd=tmp_path)
    assert missing.returncode == 2
    assert 'destinations.orders.handler: could not import module "myapp.hooks"' in missing.stderr
    assert run_cli(*elsewhere, "--app-dir", str(project), cwd=tmp_path).returncode == 0
    by_env = run_cli(*elsewhere, cwd=tmp_path, env={"PHOTOHOOK_APP_DIR": str(project)})
    assert by_env.returncode == 0, by_env.stderr

    event_id, states = deliver_one(project)
    assert states == {"orders": "delivered", "log": "delivered"}
    assert (project / "delivered" / event_id).read_text() == "orders 1"


@pytest.mark.parametrize("own_init", [False, True], ids=["handlers-folder", "handlers-package"])
def test_a_teams_handlers_and_the_built_in_ones_side_by_side(
    tmp_path: Path, own_init: bool
) -> None:
    project = tmp_path / "project"
    (project / "handlers").mkdir(parents=True)
    (project / "handlers" / "orders.py").write_text(RECORD)
    if own_init:
        (project / "handlers" / "__init__.py").write_text("TEAM = True\n")
        # The project's package shadows photohook's; the built-ins keep their own names.
        (project / "photohook.toml").write_text(
            routed(orders="handlers.orders:record", log="handlers.log:print_event")
        )
        shadowed = run_cli("check", cwd=project)
        assert shadowed.returncode == 2
        assert 'could not import module "handlers.log"' in shadowed.stderr
        builtin = "receiver.handlers.log:print_event"
    else:
        builtin = "handlers.log:print_event"
    (project / "photohook.toml").write_text(routed(orders="handlers.orders:record", log=builtin))
    checked = run_cli("check", cwd=project)
    assert checked.returncode == 0, checked.stderr

    event_id, states = deliver_one(project)
    assert states == {"orders": "delivered", "log": "delivered"}
    assert (project / "delivered" / event_id).read_text() == "orders 1"
    assert event_id in (project / "serve.log").read_text()  # handlers.log's line


def test_serve_no_worker_never_imports_handler_modules(tmp_path: Path) -> None:
    (tmp_path / "heavy_hooks.py").write_text("import a_dependency_only_workers_have\n")
    (tmp_path / "photohook.toml").write_text(routed(heavy="heavy_hooks:record"))
    expected = (
        'photohook.toml: destinations.heavy.handler: module "heavy_hooks" failed to import: '
        "No module named 'a_dependency_only_workers_have'"
    )
    for command in (("worker",), ("serve", "--port", "1"), ("check",)):
        refused = run_cli(*command, cwd=tmp_path)
        assert refused.returncode == 2
        assert refused.stderr == f"photohook: error: {expected}\n"

    serve = Serve(tmp_path, "--no-worker")
    serve.start()
    try:
        url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
        response = httpx.post(url, json=fixture("fotor/upscale-completed"))
        assert response.status_code == 200, response.text
    finally:
        serve.stop()
    [delivery] = json.loads(run_cli("deliveries", "--json", cwd=tmp_path).stdout)
    assert (delivery["destination"], delivery["state"]) == ("heavy", "pending")
