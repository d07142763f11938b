"""Every secret, token and API key a run uses is searched for in the logs, the database files
and the dashboard's HTML afterwards: 0 hits."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.helpers import fixture
from tests.integration.providers import API_KEY, FakeFotor
from tests.integration.servers import Sink, running

from .helpers import Serve, deliveries, run_cli, wait_until

URL_KEY = "url-signing-key-7f3a9c"
ADMIN = "admin-token-5e1d22b0"
CROP_SECRET = "crop-shared-secret-81b4"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
QUERY_CREDENTIAL = "sink-query-credential-33aa"
CLIENT_BEARER = "client-bearer-token-90ff"


def test_no_secret_is_logged_stored_or_shown(tmp_path: Path) -> None:
    sink = Sink(secret=WHSEC)
    fotor = FakeFotor()
    fotor.tasks["registered-task"] = fixture("fotor/upscale-completed") | {
        "taskId": "registered-task"
    }
    with running(sink.app, lifespan="off") as sink_url, running(fotor.app, lifespan="off") as api:
        (tmp_path / "photohook.toml").write_text(
            "[server]\nallow_private_destinations = true\n"
            f'[sources.fotor]\napi_key = "env:FOTOR_API_KEY"\napi_base_url = "{api}"\n'
            'reconcile_after = "100ms"\n'
            f'[sources.crop]\nkind = "cropphoto"\nsecrets = ["env:CROP_SECRET"]\n'
            f'[destinations.sink]\nurl = "{sink_url}/hook?key={QUERY_CREDENTIAL}"\n'
            'secret = "env:SINK_SECRET"\n[[routes]]\nto = ["sink"]\n'
        )
        env = {
            "PHOTOHOOK_SECRET_KEYS": URL_KEY,
            "PHOTOHOOK_ADMIN_TOKEN": ADMIN,
            "PHOTOHOOK_LOG_FORMAT": "json",
            "PHOTOHOOK_LOG_LEVEL": "debug",
            "FOTOR_API_KEY": API_KEY,
            "CROP_SECRET": CROP_SECRET,
            "SINK_SECRET": WHSEC,
        }
        serve = Serve(tmp_path, env=env)
        serve.start()
        pages = []
        try:
            url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path, env=env)
            token = url.stdout.strip().rsplit("/", 1)[1]
            admin = {"authorization": f"Bearer {ADMIN}"}
            with httpx.Client(base_url=serve.base_url, timeout=10) as client:
                ok = client.post(
                    f"/hooks/fotor/{token}",
                    json=fixture("fotor/avatar-completed"),
                    headers={"authorization": f"Bearer {CLIENT_BEARER}"},
                )
                assert ok.status_code == 200
                client.post(f"/hooks/fotor/{token}x", json=fixture("fotor/upscale-completed"))
                crop = client.post(
                    "/hooks/crop",
                    json=fixture("cropphoto/banner-job-completed"),
                    headers={"x-webhook-secret": CROP_SECRET},
                )
                assert crop.status_code == 200
                client.post("/hooks/crop", json={}, headers={"x-webhook-secret": CROP_SECRET + "x"})
                client.post(
                    "/api/tasks",
                    json={"source": "fotor", "task_id": "registered-task"},
                    headers=admin,
                )
                assert wait_until(lambda: len(sink.received) >= 3, within=20)
                assert all(r.verified for r in sink.received)
                login = client.post("/ui/login", data={"token": ADMIN})
                assert login.status_code == 303
                event_id = ok.json()["event_ids"][0]
                for path in (
                    "/ui/events",
                    f"/ui/events/{event_id}",
                    "/ui/deliveries",
                    "/ui/destinations",
                    "/ui/overview",
                ):
                    page = client.get(path)
                    assert page.status_code == 200, path
                    pages.append(page.text)
                for path in (
                    "/api/events",
                    f"/api/events/{event_id}",
                    "/api/destinations",
                    "/api/reconciler",
                    "/metrics",
                ):
                    pages.append(client.get(path, headers=admin).text)
            assert wait_until(
                lambda: all(d["state"] == "delivered" for d in deliveries(tmp_path, env)), within=20
            )
            time.sleep(0.3)
        finally:
            serve.stop()
    artifacts = {
        "log": serve.log.read_bytes(),
        "database": b"".join(p.read_bytes() for p in tmp_path.glob("photohook.db*")),
        "pages": "\n".join(pages).encode(),
    }
    secrets = {
        "URL key": URL_KEY,
        "URL token": token,
        "admin token": ADMIN,
        "Crop.photo secret": CROP_SECRET,
        "destination secret": WHSEC,
        "destination secret key": WHSEC.removeprefix("whsec_"),
        "API key": API_KEY,
        "credential in a destination URL": QUERY_CREDENTIAL,
        "client's bearer token": CLIENT_BEARER,
    }
    hits = {
        (secret, where)
        for secret, value in secrets.items()
        for where, data in artifacts.items()
        if value.encode() in data
    }
    sizes = {where: len(data) for where, data in artifacts.items()}
    print(f"\nsearched {sizes} bytes for {len(secrets)} secrets: {len(hits)} hits")
    assert hits == set()
    assert b"photohook.access" in artifacts["log"]  # the log is really there, and JSON
    assert len(artifacts["database"]) > 10_000


def test_the_generated_url_key_stays_out_of_a_debug_log(tmp_path: Path) -> None:
    import sqlite3

    serve = Serve(tmp_path, env={"PHOTOHOOK_LOG_LEVEL": "debug"})
    serve.start()
    try:
        url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout.strip()
        assert httpx.post(url, json=fixture("fotor/upscale-completed")).status_code == 200
    finally:
        serve.stop()
    with sqlite3.connect(tmp_path / "photohook.db") as db:
        [(key,)] = db.execute("SELECT value FROM meta WHERE key = 'url_token_key'").fetchall()
    log = serve.log.read_text()
    assert key not in log
    assert url.rsplit("/", 1)[1] not in log
