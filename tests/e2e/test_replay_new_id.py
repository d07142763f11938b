"""Replaying an event: as the same message by default, as a new one with ``--new-id``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from receiver.signing import new_secret
from tests.helpers import fixture
from tests.integration.servers import Sink, running

from .process import Serve, run_cli


def wait_until(check: Callable[[], bool], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not true in time"
        time.sleep(0.1)


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
