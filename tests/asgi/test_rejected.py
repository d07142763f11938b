"""Rejected requests in process: an authenticated callback refused for its content is kept
before its answer, listed, and retried into an event once the cause is fixed."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from receiver import Settings, create_app
from receiver.errors import AlreadyAccepted
from receiver.routing import Router
from receiver.sources import fotor
from receiver.store import EventQuery
from receiver.tokens import URLTokens
from receiver.web import ingest, rejected
from tests.helpers import asgi_client, fixture, fixture_bytes
from tests.integration.servers import Sink, eventually, running

KEY = "rejected-test-key"
ADMIN = "admin-token-for-rejected-tests"
CROP_SECRET = "crop-secret-never-stored-4242"
TOKENS = URLTokens([KEY])
JSON = {"content-type": "application/json"}


def config(sink: str) -> str:
    return f"""
[server]
allow_private_destinations = true
max_body_bytes = 4096

[sources.fotor]
kind = "fotor"

[sources.capped]
kind = "fotor"
max_rejected = 2

[sources.crop]
kind = "cropphoto"
secrets = ["{CROP_SECRET}"]

[destinations.sink]
url = "{sink}/hook"

[[routes]]
status = "completed"
to = ["sink"]
"""


def hook(source: str) -> str:
    return f"/hooks/{source}/{TOKENS.token(source)}"


class Photohook:
    """photohook in process, with a real sink on loopback and an admin client."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient, sink: Sink) -> None:
        self.app = app
        self.client = client
        self.sink = sink

    async def post(self, source: str, content: bytes, **headers: str) -> httpx.Response:
        return await self.client.post(hook(source), content=content, headers=JSON | headers)

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {ADMIN}"}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def kept(self, **params: str) -> list[dict[str, Any]]:
        response = await self.admin("GET", "/api/rejected", params=params)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def metrics(self) -> str:
        return (await self.admin("GET", "/metrics")).text


@pytest.fixture
def sink() -> Iterator[tuple[Sink, str]]:
    sink = Sink()
    with ExitStack() as stack:
        yield sink, stack.enter_context(running(sink.app, lifespan="off"))


def settings_for(tmp_path: Path, database_url: str, text: str) -> Settings:
    path = tmp_path / "photohook.toml"
    path.write_text(text)
    return Settings.load(
        config_file=path,
        database_url=database_url,
        environ={"PHOTOHOOK_SECRET_KEYS": KEY, "PHOTOHOOK_ADMIN_TOKEN": ADMIN},
    )


@pytest.fixture
async def photohook(
    tmp_path: Path, database_url: str, sink: tuple[Sink, str]
) -> AsyncIterator[Photohook]:
    """On each database engine."""
    app = create_app(settings_for(tmp_path, database_url, config(sink[1])))
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(asgi_client(app))
        yield Photohook(app, client, sink[0])


@pytest.fixture
async def on_sqlite(tmp_path: Path, sink: tuple[Sink, str]) -> AsyncIterator[Photohook]:
    database_url = f"sqlite:///{tmp_path / 'photohook.db'}"
    app = create_app(settings_for(tmp_path, database_url, config(sink[1])))
    async with asgi_client(app) as client:
        yield Photohook(app, client, sink[0])


def unknown_status() -> bytes:
    """Fotor's completed upscale, with a status value Fotor has not documented."""
    return fixture_bytes("fotor/upscale-completed").replace(b'"status": 1', b'"status": 3')


async def test_an_unknown_status_is_422_kept_listed_and_still_refused_on_retry(
    photohook: Photohook, caplog: pytest.LogCaptureFixture
) -> None:
    body = unknown_status()
    assert b'"status": 3' in body
    caplog.set_level(logging.WARNING, logger="photohook.ingest")
    response = await photohook.post("fotor", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "status"

    [item] = await photohook.kept()
    assert item["source"] == "fotor" and item["status"] == 422
    assert item["error"] == {
        "code": "invalid_payload",
        "message": "status must be one of 0, 1, 2",
        "field": "status",
    }
    assert item["body_kept"] is True and item["outcome"] is None and item["retries"] == 0
    assert "body" not in item and "headers" not in item  # the list stays light
    detail = (await photohook.admin("GET", f"/api/rejected/{item['id']}")).json()
    assert detail["body"].encode() == body
    assert ["content-type", "application/json"] in detail["headers"]
    assert detail["client"] == "54.212.95.175"

    [line] = [r for r in caplog.records if r.name == "photohook.ingest"]
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert "source fotor" in message and "422 invalid_payload" in message
    assert "'status'" in message and item["id"] in message
    assert TOKENS.token("fotor") not in caplog.text

    retried = await photohook.admin("POST", f"/api/rejected/{item['id']}/retry")
    assert retried.status_code == 200, retried.text
    answer = retried.json()
    assert answer["outcome"] == "rejected" and answer["retries"] == 1
    assert answer["retry_error"] == {
        "status": 422,
        "code": "invalid_payload",
        "message": "status must be one of 0, 1, 2",
        "field": "status",
    }
    assert answer["event_ids"] == [] and answer["retried_at"] is not None
    [still] = await photohook.kept()
    assert still["id"] == item["id"] and still["outcome"] == "rejected"
    assert [r["id"] for r in await photohook.kept(retryable="true")] == [item["id"]]
    assert await photohook.app.state.store.list_events(EventQuery()) == []
    assert (await photohook.admin("GET", "/api/rejected/rej_nope")).status_code == 404
    assert (await photohook.admin("POST", "/api/rejected/rej_nope/retry")).status_code == 404


async def test_once_the_parser_knows_the_status_a_retry_makes_an_event_that_is_delivered(
    photohook: Photohook, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = unknown_status()
    assert (await photohook.post("fotor", body)).status_code == 422
    [item] = await photohook.kept()

    monkeypatch.setitem(fotor.STATUS_NAMES, 3, "completed")  # a photohook that learned it
    answer = (await photohook.admin("POST", f"/api/rejected/{item['id']}/retry")).json()
    assert answer["outcome"] == "accepted" and answer["retry_error"] is None
    [event_id] = answer["event_ids"]
    event = (await photohook.admin("GET", f"/api/events/{event_id}")).json()
    assert event["event"]["status"] == "completed"
    assert event["event"]["payload"] == json.loads(body)
    assert event["event"]["received_at"] == item["received_at"]  # when it first arrived
    assert event["request"]["body"].encode() == body

    await eventually(lambda: len(photohook.sink.received) == 1)
    assert photohook.sink.received[0].json()["id"] == event_id

    # Deduplicated as usual: the provider's resend makes no new event; an accepted request is
    # not run again, and keeps what its retry came to.
    resent = (await photohook.post("fotor", body)).json()
    assert resent == {"ok": True, "event_ids": [event_id], "duplicate": True}
    again = await photohook.admin("POST", f"/api/rejected/{item['id']}/retry")
    assert again.status_code == 409, again.text
    assert again.json()["error"]["message"] == (
        f"it was retried already: accepted as {event_id}; it is not run again"
    )
    [kept] = await photohook.kept()
    assert (kept["outcome"], kept["event_ids"], kept["retries"]) == ("accepted", [event_id], 1)
    assert await photohook.kept(retryable="true") == []
    page = (await photohook.admin("GET", f"/ui/rejected/{item['id']}")).text
    assert 'id="outcome"' in page and 'id="retry"' not in page
    assert 'photohook_events_total{type="fotor.task.completed"} 1.0' in await photohook.metrics()


async def test_of_two_retries_at_once_only_one_records_its_outcome(
    photohook: Photohook,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    sink: tuple[Sink, str],
) -> None:
    """Two bulk retries that both listed the request before either ran it: the record's update
    is conditional, so the second writes nothing and does not turn ``accepted`` into
    ``duplicate``."""
    assert (await photohook.post("fotor", unknown_status())).status_code == 422
    [item] = await photohook.kept()
    store = photohook.app.state.store
    listed = await store.get_rejected(item["id"])  # as both bulk retries read it
    monkeypatch.setitem(fotor.STATUS_NAMES, 3, "completed")
    settings = settings_for(tmp_path, database_url, config(sink[1]))
    router = Router(settings.routes)
    assert await rejected._run(store, settings, router, listed, None) == "accepted"
    with pytest.raises(AlreadyAccepted, match="another retry accepted it meanwhile"):
        await rejected._run(store, settings, router, listed, None)
    [kept] = await photohook.kept()
    assert (kept["outcome"], kept["retries"]) == ("accepted", 1)
    assert len(await store.list_events(EventQuery())) == 1


async def test_the_cap_turns_away_what_is_over_it_and_counts_it(
    on_sqlite: Photohook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="photohook.ingest")
    for _ in range(3):
        assert (await on_sqlite.post("capped", unknown_status())).status_code == 422
    assert (await on_sqlite.post("fotor", unknown_status())).status_code == 422
    assert len(await on_sqlite.kept(source="capped")) == 2
    assert len(await on_sqlite.kept(source="fotor")) == 1
    metrics = await on_sqlite.metrics()
    assert 'photohook_rejected_requests_total{outcome="kept",source="capped"} 2.0' in metrics
    assert 'photohook_rejected_requests_total{outcome="over_cap",source="capped"} 1.0' in metrics
    assert 'photohook_rejected_requests_total{outcome="kept",source="fotor"} 1.0' in metrics
    [turned_away] = [r for r in caplog.records if "not kept" in r.getMessage()]
    assert turned_away.levelno == logging.WARNING
    assert "source capped" in turned_away.getMessage()
    assert "422 invalid_payload (field 'status'): status must be one of" in turned_away.getMessage()


class _Clock:
    """The ``time`` module as ingest sees it, with a monotonic clock that can be moved on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


async def test_a_flood_over_the_cap_logs_one_line_per_window_with_its_count(
    on_sqlite: Photohook, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leaked token sending bad bodies as fast as it can: every one is counted, but the log
    gets one line per source per window, saying how many were turned away since the last."""
    clock = _Clock()
    monkeypatch.setattr(ingest, "time", clock)
    caplog.set_level(logging.WARNING, logger="photohook.ingest")

    def turned_away() -> list[str]:
        return [r.getMessage() for r in caplog.records if "not kept" in r.getMessage()]

    for _ in range(22):
        assert (await on_sqlite.post("capped", unknown_status())).status_code == 422
    [line] = turned_away()
    assert "source capped" in line
    assert line.endswith("; 1 turned away so since the last such line (one every 5s at most)")
    clock.ahead += ingest._FULL_FOR  # the window is over
    assert (await on_sqlite.post("capped", unknown_status())).status_code == 422
    [_, second] = turned_away()
    assert "; 20 turned away so since the last such line" in second  # 19 unlogged, and this one
    metrics = await on_sqlite.metrics()
    assert 'photohook_rejected_requests_total{outcome="over_cap",source="capped"} 21.0' in metrics


async def test_unauthenticated_bad_bodies_are_counted_and_never_kept(on_sqlite: Photohook) -> None:
    client = on_sqlite.client
    refused = [
        await client.post("/hooks/fotor/not-a-token", content=b"{", headers=JSON),
        await client.post(hook("crop"), content=b'{"job_id": 5}', headers=JSON),
        await client.post(
            "/hooks/crop", content=b"{", headers=JSON | {"x-webhook-secret": "wrong"}
        ),
    ]
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert await on_sqlite.kept() == []
    async with on_sqlite.app.state.store._read() as tx:
        assert await tx.fetch("SELECT id FROM rejected") == []
    metrics = await on_sqlite.metrics()
    assert (
        'photohook_callbacks_total{outcome="rejected",reason="unauthorized",source="crop"} 2.0'
        in metrics
    )
    assert "photohook_rejected_requests_total{" not in metrics


async def test_secrets_in_headers_are_redacted_in_the_kept_copy(
    on_sqlite: Photohook, tmp_path: Path
) -> None:
    secrets = {
        "x-webhook-secret": CROP_SECRET,
        "authorization": "Bearer bearer-never-stored-77",
        "x-api-key": "api-key-never-stored-99",
        "x-custom-token": "custom-token-never-stored-11",
    }
    accepted = await on_sqlite.post(
        "crop", fixture_bytes("cropphoto/banner-job-completed"), **secrets
    )
    assert accepted.status_code == 200, accepted.text
    refused = await on_sqlite.post("crop", b'{"job_id": 5, "status": "completed"}', **secrets)
    assert refused.status_code == 422, refused.text
    [item] = await on_sqlite.kept()
    detail = (await on_sqlite.admin("GET", f"/api/rejected/{item['id']}")).json()
    kept = dict(detail["headers"])
    event_id = accepted.json()["event_ids"][0]
    stored = (await on_sqlite.admin("GET", f"/api/events/{event_id}")).json()["request"]
    for name in secrets:
        assert kept[name] == "[redacted]"
        assert [name, "[redacted]"] in stored["headers"]  # exactly as the accepted copy
    page = (await on_sqlite.admin("GET", f"/ui/rejected/{item['id']}")).text
    files = _database_files(tmp_path)  # the WAL too: the commits are there
    for value in secrets.values():
        assert value.encode() not in files
        assert value not in json.dumps(detail) and value not in page


async def test_a_hook_token_in_a_header_value_is_masked_in_every_kept_copy(
    on_sqlite: Photohook, tmp_path: Path
) -> None:
    token = TOKENS.token("fotor")
    forwarded = {
        "referer": f"https://proxy.example/hooks/fotor/{token}",
        "x-original-uri": f"/hooks/fotor/{token}?x=1",
    }
    accepted = await on_sqlite.post("fotor", fixture_bytes("fotor/upscale-completed"), **forwarded)
    assert accepted.status_code == 200, accepted.text
    refused = await on_sqlite.post("fotor", unknown_status(), **forwarded)
    assert refused.status_code == 422, refused.text
    [item] = await on_sqlite.kept()
    detail = (await on_sqlite.admin("GET", f"/api/rejected/{item['id']}")).json()
    event_id = accepted.json()["event_ids"][0]
    stored = (await on_sqlite.admin("GET", f"/api/events/{event_id}")).json()["request"]
    for headers in (detail["headers"], stored["headers"]):
        assert ["referer", "https://proxy.example/hooks/fotor/<token>"] in headers
        assert ["x-original-uri", "/hooks/fotor/<token>?x=1"] in headers
    pages = [
        (await on_sqlite.admin("GET", f"/ui/rejected/{item['id']}")).text,
        (await on_sqlite.admin("GET", f"/ui/events/{event_id}")).text,
    ]
    assert token.encode() not in _database_files(tmp_path)
    for shown in (json.dumps(detail), json.dumps(stored), *pages):
        assert token not in shown


def _database_files(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(directory.glob("photohook.db*")))


async def test_invalid_json_and_a_wrong_media_type_are_kept_with_their_bodies(
    on_sqlite: Photohook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="photohook.ingest")
    broken = b'{"taskId": "t-1", "status": 1,'
    answer = await on_sqlite.post("fotor", broken)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"
    [kept] = await on_sqlite.kept()
    [line] = [r.getMessage() for r in caplog.records if r.name == "photohook.ingest"]
    message = answer.json()["error"]["message"]
    assert line == (
        f"refused a callback of source fotor with 400 invalid_json: {message}; kept as {kept['id']}"
    )
    plain = fixture_bytes("fotor/upscale-completed")
    answer = await on_sqlite.post("fotor", plain, **{"content-type": "text/plain"})
    assert answer.status_code == 415
    media, json_error = await on_sqlite.kept()
    assert (media["status"], media["error"]["code"]) == (415, "unsupported_media_type")
    assert (json_error["status"], json_error["error"]["code"]) == (400, "invalid_json")
    for item, body in ((media, plain), (json_error, broken)):
        detail = (await on_sqlite.admin("GET", f"/api/rejected/{item['id']}")).json()
        assert detail["body"].encode() == body
    # Retrying a 415 says the body is JSON after all: it is parsed and validated, not refused
    # for the Content-Type it arrived with (which never changes).
    retried = (await on_sqlite.admin("POST", f"/api/rejected/{media['id']}/retry")).json()
    assert retried["outcome"] == "accepted" and retried["retry_error"] is None
    [event_id] = retried["event_ids"]
    event = (await on_sqlite.admin("GET", f"/api/events/{event_id}")).json()["event"]
    assert event["payload"] == json.loads(plain)
    # Still parsed: a 415 whose body is not JSON is refused again, for that.
    answer = await on_sqlite.post("fotor", b"not json", **{"content-type": "text/plain"})
    assert answer.status_code == 415
    [garbage] = [r for r in await on_sqlite.kept(retryable="true") if r["status"] == 415]
    again = (await on_sqlite.admin("POST", f"/api/rejected/{garbage['id']}/retry")).json()
    assert again["outcome"] == "rejected" and again["retry_error"]["code"] == "invalid_json"


async def test_a_body_over_the_limit_is_kept_without_it_and_cannot_be_retried(
    on_sqlite: Photohook,
) -> None:
    body = json.dumps(fixture("fotor/upscale-completed") | {"padding": "x" * 5000}).encode()
    answer = await on_sqlite.post("fotor", body)
    assert answer.status_code == 413
    [item] = await on_sqlite.kept()
    assert item["status"] == 413 and item["body_kept"] is False
    detail = (await on_sqlite.admin("GET", f"/api/rejected/{item['id']}")).json()
    assert detail["body"] is None
    retried = await on_sqlite.admin("POST", f"/api/rejected/{item['id']}/retry")
    assert retried.status_code == 409
    assert "not kept" in retried.json()["error"]["message"]
    # Not retryable, so a bulk retry leaves it out rather than failing on it every time.
    assert await on_sqlite.kept(retryable="true") == []
    assert (await on_sqlite.admin("POST", "/api/rejected/retry")).json() == {
        "accepted": 0,
        "duplicate": 0,
        "rejected": 0,
        "skipped": 0,
    }


async def test_a_failure_to_keep_is_503_and_keeping_heals(on_sqlite: Photohook) -> None:
    store = on_sqlite.app.state.store
    await store._writer.execute("PRAGMA query_only = 1")  # SQLite now refuses every write
    answer = await on_sqlite.post("fotor", unknown_status())
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "unavailable"
    assert answer.headers["retry-after"] == "5"
    await store._writer.execute("PRAGMA query_only = 0")
    assert await on_sqlite.kept() == []
    assert (await on_sqlite.post("fotor", unknown_status())).status_code == 422
    assert len(await on_sqlite.kept()) == 1


async def test_a_retry_needs_its_source_still_configured(
    tmp_path: Path, sink: tuple[Sink, str]
) -> None:
    database_url = f"sqlite:///{tmp_path / 'photohook.db'}"
    app = create_app(settings_for(tmp_path, database_url, config(sink[1])))
    async with asgi_client(app) as client:
        assert (await client.post(hook("capped"), content=b"{", headers=JSON)).status_code == 400
    fewer = config(sink[1]).replace('[sources.capped]\nkind = "fotor"\nmax_rejected = 2\n', "")
    app = create_app(settings_for(tmp_path, database_url, fewer))
    async with asgi_client(app) as client:
        on = Photohook(app, client, sink[0])
        [item] = await on.kept()
        answer = await on.admin("POST", f"/api/rejected/{item['id']}/retry")
        assert answer.status_code == 409
        assert "source 'capped' is no longer configured" in answer.json()["error"]["message"]
        assert (await on.admin("POST", "/api/rejected/retry")).json() == {
            "accepted": 0,
            "duplicate": 0,
            "rejected": 0,
            "skipped": 1,
        }
        assert len(await on.kept()) == 1


async def test_the_dashboard_lists_shows_and_retries_them(on_sqlite: Photohook) -> None:
    assert (await on_sqlite.post("fotor", unknown_status())).status_code == 422
    [item] = await on_sqlite.kept()
    listing = await on_sqlite.admin("GET", "/ui/rejected")
    assert listing.status_code == 200 and item["id"] in listing.text
    assert "status must be one of 0, 1, 2" in listing.text
    page = await on_sqlite.admin("GET", f"/ui/rejected/{item['id']}")
    assert page.status_code == 200 and "&#34;status&#34;: 3" in page.text
    retried = await on_sqlite.admin("POST", f"/ui/rejected/{item['id']}/retry")
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/ui/rejected/{item['id']}"
    after = await on_sqlite.admin("GET", f"/ui/rejected/{item['id']}")
    assert 'id="outcome"' in after.text and "rejected" in after.text
    missing = await on_sqlite.admin("GET", "/ui/rejected/rej_nope")
    assert missing.status_code == 404
    assert "<h1>404</h1>" in missing.text and "no rejected request with that id" in missing.text


async def test_a_failure_to_keep_is_503_on_each_engine(photohook: Photohook) -> None:
    store = photohook.app.state.store

    async def rename(old: str, new: str) -> None:
        await store._run("renaming", lambda tx: tx.execute(f"ALTER TABLE {old} RENAME TO {new}"))

    await rename("rejected", "rejected_elsewhere")  # every insert of a rejection now fails
    answer = await photohook.post("fotor", unknown_status())
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "unavailable"
    accepted = await photohook.post("fotor", fixture_bytes("fotor/upscale-completed"))
    assert accepted.status_code == 200  # the accepted path does not share its fate
    await rename("rejected_elsewhere", "rejected")
    assert (await photohook.post("fotor", unknown_status())).status_code == 422
    assert len(await photohook.kept()) == 1
