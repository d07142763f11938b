"""``photohook rejected`` and ``photohook rejected retry`` against a real ``serve``'s database:
a callback refused under a wrong configuration becomes an event once the configuration is
fixed."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

from tests.helpers import fixture, fixture_bytes

from .process import Serve, run_cli


def test_a_callback_refused_under_a_wrong_kind_is_retried_once_the_config_is_fixed(
    tmp_path: Path,
) -> None:
    config = tmp_path / "photohook.toml"
    config.write_text('[sources.vendor]\nkind = "cropphoto"\n')  # Fotor's URL, the wrong kind
    serve = Serve(tmp_path)
    serve.start()
    try:
        url = run_cli("url", "vendor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
        body = fixture_bytes("fotor/upscale-completed")
        headers = {"content-type": "application/json"}
        answer = httpx.post(url, content=body, headers=headers, timeout=10)
        assert answer.status_code == 422, answer.text
    finally:
        serve.signal(signal.SIGTERM)
        serve.wait()

    table = run_cli("rejected", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[:4] == ["ID", "RECEIVED", "SOURCE", "STATUS"]
    rejected_id = row.split()[0]
    assert rejected_id.startswith("rej_") and " vendor " in row and " 422 " in row
    [kept] = json.loads(run_cli("rejected", "--json", "--source", "vendor", cwd=tmp_path).stdout)
    assert kept["id"] == rejected_id and kept["body"].encode() == body
    assert json.loads(run_cli("rejected", "--json", "--source", "x", cwd=tmp_path).stdout) == []

    refused = run_cli("rejected", "retry", rejected_id, cwd=tmp_path)
    assert refused.returncode == 1
    assert f"{rejected_id}: still refused: 422 invalid_payload" in refused.stderr
    assert "it is kept" in refused.stderr
    unknown = run_cli("rejected", "retry", "rej_nope", cwd=tmp_path)
    assert unknown.returncode == 1 and "no rejected request with that id" in unknown.stderr
    assert run_cli("rejected", "retry", cwd=tmp_path).returncode == 1

    config.write_text('[sources.vendor]\nkind = "fotor"\n')
    fixed = run_cli("rejected", "retry", "--all", "--source", "vendor", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout == "1 accepted, 0 duplicate, 0 rejected\n"
    [event] = json.loads(run_cli("events", "--json", cwd=tmp_path).stdout)
    assert event["source"] == "vendor" and event["status"] == "completed"
    assert event["payload"] == fixture("fotor/upscale-completed")
    [kept] = json.loads(run_cli("rejected", "--json", cwd=tmp_path).stdout)
    assert kept["outcome"] == "accepted" and kept["event_ids"] == [event["id"]]
    assert kept["retries"] == 2 and kept["retry_error"] is None
    again = run_cli("rejected", "retry", rejected_id, cwd=tmp_path)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.strip().endswith(
        f"{rejected_id}: it was retried already: accepted as {event['id']}; it is not run again"
    )
    nothing_left = run_cli("rejected", "retry", "--all", cwd=tmp_path)
    assert nothing_left.stdout == "0 accepted, 0 duplicate, 0 rejected\n"
