"""What a new user does, as the README says it: install the checkout into a fresh virtual
environment, write ``photohook.toml`` and a handler module in an empty folder, serve, register the
URL, and receive a callback; then see a refused callback kept, listed and retried.

The install is a real ``pip install`` of the checkout (not editable), so a file the wheel leaves
out (a migration, a template) fails here as it would for a user.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import fixture, free_port
from tests.integration.servers import Sink, eventually, running

CHECKOUT = Path(__file__).resolve().parents[2]

HOOKS = '''\
import json


def record(event, context):
    """Writes what it was given: the README's handler, with the delivery context."""
    line = {"event": event.id, "status": event.status, "attempt": context.attempt,
            "destination": context.destination}
    with open("handled.jsonl", "a") as out:
        out.write(json.dumps(line) + "\\n")
'''


@pytest.fixture(scope="module")
def photohook_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the checkout pip-installed into it."""
    environment = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(environment)
    subprocess.run(
        [environment / "bin" / "python", "-m", "pip", "install", "--quiet", str(CHECKOUT)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    return environment / "bin" / "photohook"


class NewUser:
    """Runs the installed ``photohook`` in the user's folder, with the server's PORT set."""

    def __init__(self, photohook: Path, folder: Path) -> None:
        self.photohook = photohook
        self.folder = folder
        self.port = free_port()
        # A user's shell: nothing of this test run's environment but PATH and HOME.
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(folder)),
            "PORT": str(self.port),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.photohook), *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    @property
    def handled(self) -> list[dict[str, object]]:
        path = self.folder / "handled.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def serving(photohook_bin: Path, tmp_path: Path) -> Iterator[tuple[NewUser, Sink]]:
    folder = tmp_path / "my-project"
    (folder / "myapp").mkdir(parents=True)
    (folder / "myapp" / "__init__.py").write_text("")
    (folder / "myapp" / "hooks.py").write_text(HOOKS)
    user = NewUser(photohook_bin, folder)

    made = user.run("secret")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("whsec_")
    sink = Sink(secret=secret)
    with running(sink.app, lifespan="off") as sink_url:
        (folder / "photohook.toml").write_text(
            f"""\
[destinations.app]
url = "{sink_url}/hooks/photohook"
secret = "{secret}"
allow_private = true

[destinations.record]
handler = "myapp.hooks:record"

[[routes]]
to = ["app", "record"]
"""
        )
        assert sorted(p.name for p in folder.iterdir()) == ["myapp", "photohook.toml"]
        log = (tmp_path / "serve.log").open("wb")
        server = subprocess.Popen(
            [str(photohook_bin), "serve"],
            cwd=folder,
            env=user.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{user.port}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.05)
            yield user, sink
        finally:
            server.terminate()
            server.wait(30)
            log.close()


async def test_a_new_user_registers_the_url_and_their_handler_and_endpoint_get_the_result(
    serving: tuple[NewUser, Sink],
) -> None:
    user, sink = serving
    printed = user.run("url", "fotor")
    assert printed.returncode == 0, printed.stderr
    url = printed.stdout.strip()
    assert url.startswith(f"http://127.0.0.1:{user.port}/hooks/fotor/")

    body = fixture("fotor/upscale-completed")
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=body)
    assert response.status_code == 200, response.text
    [event_id] = response.json()["event_ids"]

    await eventually(lambda: len(sink.received) == 1 and len(user.handled) == 1, within=30)
    [received] = sink.received
    assert received.verified is True  # the standardwebhooks library verified the signature
    assert received.webhook_id == event_id
    assert received.json()["task_id"] == body["taskId"]
    assert user.handled == [
        {"event": event_id, "status": "completed", "attempt": 1, "destination": "record"}
    ]


async def test_a_refused_callback_is_kept_listed_and_still_refused_on_retry(
    serving: tuple[NewUser, Sink],
) -> None:
    user, sink = serving
    url = user.run("url", "fotor").stdout.strip()
    body = fixture("fotor/upscale-completed") | {"status": 7}  # a status Fotor may add one day
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "status"

    listed = user.run("rejected")
    assert listed.returncode == 0, listed.stderr
    assert "422" in listed.stdout and "status" in listed.stdout
    [kept] = json.loads(user.run("rejected", "--json").stdout)
    assert kept["status"] == 422 and kept["error"]["field"] == "status"
    assert json.loads(kept["body"]) == body

    retried = user.run("rejected", "retry", kept["id"])
    assert retried.returncode == 1
    assert "still refused" in retried.stderr and "status" in retried.stderr
    [still] = json.loads(user.run("rejected", "--json").stdout)
    assert still["id"] == kept["id"] and still["outcome"] == "rejected"
    assert still["retry_error"]["field"] == "status"
    assert sink.received == [] and user.handled == []
