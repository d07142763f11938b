"""Kept result files end to end, on SQLite and PostgreSQL: photohook under uvicorn, a provider's
file server and an HTTP sink on loopback. A completed Fotor callback's result is copied into
the result store before the sink hears of it; the sink gets a stable link to the copy, which
serves the same bytes after the provider's link stops working."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from receiver import Settings, create_app
from receiver.config.results import ResultsConfig, S3Config
from receiver.keeping import kept_results, result_store
from receiver.secrets import Secret
from receiver.states import DeliveryState
from receiver.store import DeliveryQuery, open_store

from .conftest import KEY, SECRET, Photohook
from .origin import Origin, png
from .servers import Sink, eventually, running

Start = Callable[..., Any]
PUBLIC = "https://hooks.example.com"


@pytest.fixture
def photohook_database(database_url: str) -> str:
    """Kept files are checked on both database engines."""
    return database_url


@pytest.fixture
def origin(stack: ExitStack) -> tuple[Origin, str]:
    served = Origin()
    return served, stack.enter_context(running(served.app, lifespan="off"))


def config(sink: str, results: str = "", *, keep_on: str = "source") -> str:
    source = "[sources.fotor]\nkeep_results = true\n" if keep_on == "source" else ""
    route = "keep_results = true\n" if keep_on == "route" else ""
    return (
        f"{source}"
        f'[destinations.app]\nurl = "{sink}/hook"\nsecret = "{SECRET}"\n'
        f'[[routes]]\nto = ["app"]\n{route}'
        f'[results]\nallow_private = true\nbase_url = "{PUBLIC}"\n{results}\n'
    )


def local(app: Any, kept_url: str) -> str:
    """The stable URL, on the test's photohook (its public base URL is a made-up one)."""
    assert kept_url.startswith(f"{PUBLIC}/files/")
    return app.base_url + urlsplit(kept_url).path


async def test_a_completed_callback_is_delivered_with_a_stable_link_to_its_kept_result(
    photohook: Start, sink_url: Callable[[Sink], str], origin: tuple[Origin, str]
) -> None:
    served, base = origin
    image = png()
    served.files["out.png"] = image
    sink = Sink(secret=SECRET)
    app = await photohook(config(sink_url(sink), keep_on="route"))
    [event_id] = await app.send(resultUrl=f"{base}/r/out.png?X-Amz-Signature=s3cr3t")
    await eventually(lambda: len(sink.received) == 1)
    body = sink.received[0].json()
    assert sink.received[0].verified and body["id"] == event_id
    [kept] = body["kept_results"]
    assert kept["url"] == f"{base}/r/out.png?X-Amz-Signature=s3cr3t"
    assert kept["status"] == "kept" and kept["error"] is None
    assert kept["size"] == len(image) and kept["content_type"] == "image/png"
    assert kept["sha256"] == hashlib.sha256(image).hexdigest()

    served.serving = False  # the provider's link has expired
    async with httpx.AsyncClient() as client:
        answer = await client.get(local(app, kept["kept_url"]))
        assert answer.status_code == 200
        assert hashlib.sha256(answer.content).hexdigest() == kept["sha256"]
        assert answer.headers["content-type"] == "image/png"
        assert "sandbox" in answer.headers["content-security-policy"]

        token = urlsplit(kept["kept_url"]).path.rsplit("/", 1)[1]
        tampered = token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]
        refused = await client.get(f"{app.base_url}/files/{tampered}")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "link_refused"
        made_up = await client.get(f"{app.base_url}/files/not-a-token")
        assert made_up.status_code == 403

        detail = (await client.get(f"{app.base_url}/api/events/{event_id}")).json()
        [file] = detail["files"]  # what an operator sees of it
        assert (file["state"], file["attempts"], file["error"]) == ("kept", 1, None)
        assert (file["sha256"], file["size"]) == (kept["sha256"], len(image))
        assert file["next_attempt_at"] is None and file["kept_at"].endswith("Z")


async def test_handler_functions_see_the_kept_results(
    photohook: Start, origin: tuple[Origin, str]
) -> None:
    served, base = origin
    image = png()
    served.files["out.png"] = image
    seen: list[Any] = []
    app = await photohook(
        '[sources.fotor]\nkeep_results = true\n[[routes]]\nto = ["record"]\n'
        f'[results]\nallow_private = true\nbase_url = "{PUBLIC}"\n',
        handlers={"record": seen.append},
    )
    await app.send(resultUrl=f"{base}/r/out.png")
    await eventually(lambda: len(seen) == 1)
    [kept] = seen[0].kept_results
    assert kept.status == "kept" and kept.sha256 == hashlib.sha256(image).hexdigest()
    assert kept.kept_url is not None and kept.kept_url.startswith(f"{PUBLIC}/files/")


async def test_an_expired_link_is_refused(
    photohook: Start, sink_url: Callable[[Sink], str], origin: tuple[Origin, str]
) -> None:
    served, base = origin
    served.files["out.png"] = png()
    sink = Sink()
    app = await photohook(config(sink_url(sink), 'link_lifetime = "1s"'))
    await app.send(resultUrl=f"{base}/r/out.png")
    await eventually(lambda: len(sink.received) == 1)
    [kept] = sink.received[0].json()["kept_results"]
    async with httpx.AsyncClient() as client:
        assert (await client.get(local(app, kept["kept_url"]))).status_code == 200
        await eventually(lambda: _status(client, local(app, kept["kept_url"]), 403), within=5)


async def _status(client: httpx.AsyncClient, url: str, status: int) -> bool:
    return (await client.get(url)).status_code == status


async def test_deliveries_wait_while_a_download_fails_then_go_out(
    photohook: Start, sink_url: Callable[[Sink], str], origin: tuple[Origin, str]
) -> None:
    served, base = origin
    image = png(colour=b"\x00\xff\x00")
    served.files["late.png"] = image
    served.failures = 2  # the provider is down for two attempts
    sink = Sink()
    app = await photohook(config(sink_url(sink), 'retry_schedule = ["1s", "1s", "1s"]'))
    [event_id] = await app.send(resultUrl=f"{base}/r/late.png")
    await eventually(lambda: len(served.requests) >= 1)
    assert await app.states() == {"app": DeliveryState.KEEPING}
    assert sink.received == []
    await eventually(lambda: len(sink.received) == 1)
    assert len(served.requests) == 3
    [kept] = sink.received[0].json()["kept_results"]
    assert kept["status"] == "kept" and kept["sha256"] == hashlib.sha256(image).hexdigest()
    await eventually(lambda: app.all_in(DeliveryState.DELIVERED, 1))
    [file] = (await app.store.kept_files([event_id]))[event_id]
    assert file.attempts == 3 and file.last_error is None
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{app.base_url}/metrics")).text
    assert 'photohook_result_files_total{outcome="retried"} 2.0' in metrics
    assert 'photohook_result_files_total{outcome="kept"} 1.0' in metrics
    assert f'photohook_result_file_bytes_total{{store="local"}} {float(len(image))}' in metrics


async def test_turning_keep_results_off_still_fetches_the_files_waiting_and_serves_the_kept(
    photohook: Start,
    photohook_database: str,
    tmp_path: Path,
    sink_url: Callable[[Sink], str],
    origin: tuple[Origin, str],
) -> None:
    served, base = origin
    image = png(colour=b"\x00\x00\xff")
    served.files["slow.png"] = image
    served.failures = 1_000  # down for as long as keep_results is on
    sink = Sink()
    url = sink_url(sink)
    first = tmp_path / "keeping.toml"
    first.write_text(
        "[server]\nallow_private_destinations = true\n"
        + config(url, 'retry_schedule = ["2s", "2s", "2s", "2s", "2s", "2s", "2s", "2s"]')
    )
    settings = Settings.load(
        config_file=first, database_url=photohook_database, environ={"PHOTOHOOK_SECRET_KEYS": KEY}
    )
    store = open_store(photohook_database)
    await store.open()
    try:
        with running(create_app(settings)) as first_url:
            [event_id] = await Photohook(first_url, store).send(resultUrl=f"{base}/r/slow.png")
            await eventually(lambda: len(served.requests) >= 1)
        assert {d.state for d in await store.list_deliveries(DeliveryQuery())} == {
            DeliveryState.KEEPING
        }
    finally:
        await store.close()

    served.failures = 0
    app = await photohook(config(url, keep_on="nowhere"))  # the last keep_results removed
    await eventually(lambda: len(sink.received) == 1)
    body = sink.received[0].json()
    assert body["id"] == event_id
    [kept] = body["kept_results"]
    assert kept["status"] == "kept" and kept["sha256"] == hashlib.sha256(image).hexdigest()
    async with httpx.AsyncClient() as client:
        served_copy = await client.get(local(app, kept["kept_url"]))
    assert served_copy.status_code == 200 and served_copy.content == image


async def test_a_file_not_fetched_within_the_schedule_is_delivered_as_missing(
    photohook: Start, sink_url: Callable[[Sink], str], origin: tuple[Origin, str]
) -> None:
    served, base = origin
    served.failures = 100
    sink = Sink()
    app = await photohook(config(sink_url(sink), 'retry_schedule = ["1s"]'))
    await app.send(resultUrl=f"{base}/r/never.png?token=hidden")
    await eventually(lambda: len(sink.received) == 1)
    [kept] = sink.received[0].json()["kept_results"]
    assert kept["status"] == "missing" and kept["kept_url"] is None
    assert kept["error"] == f"GET {base}/r/never.png answered 503"  # no query string
    assert len(served.requests) == 2


async def test_a_file_over_the_cap_is_missing_at_once(
    photohook: Start, sink_url: Callable[[Sink], str], origin: tuple[Origin, str]
) -> None:
    _, base = origin
    sink = Sink()
    app = await photohook(config(sink_url(sink), "max_bytes = 5000"))
    await app.send(resultUrl=f"{base}/big/6000")
    await eventually(lambda: len(sink.received) == 1)
    [kept] = sink.received[0].json()["kept_results"]
    assert kept["status"] == "missing"
    assert kept["error"] == f"{base}/big/6000 (6000 bytes) is over [results] max_bytes = 5000"


async def test_a_private_address_is_refused_unless_allowed(
    photohook: Start, sink_url: Callable[[Sink], str], origin: tuple[Origin, str]
) -> None:
    served, base = origin
    served.files["out.png"] = png()
    sink = Sink()
    text = config(sink_url(sink)).replace("allow_private = true", "allow_private = false")
    app = await photohook(text)
    await app.send(resultUrl=f"{base}/r/out.png")
    await eventually(lambda: len(sink.received) == 1)
    [kept] = sink.received[0].json()["kept_results"]
    assert kept["status"] == "missing"
    assert "refused: 127.0.0.1 is a loopback address" in kept["error"]
    assert served.requests == []


async def test_retention_deletes_kept_files(
    photohook: Start,
    sink_url: Callable[[Sink], str],
    origin: tuple[Origin, str],
    tmp_path: Path,
) -> None:
    served, base = origin
    served.files["out.png"] = png()
    sink = Sink()
    folder = tmp_path / "kept"
    app = await photohook(config(sink_url(sink), f'directory = "{folder}"'))
    [event_id] = await app.send(resultUrl=f"{base}/r/out.png")
    await eventually(lambda: app.all_in(DeliveryState.DELIVERED, 1))
    [kept] = sink.received[0].json()["kept_results"]
    [stored] = list(folder.rglob("*.png"))
    assert stored.read_bytes() == served.files["out.png"]

    pruned = await app.store.prune(datetime.now(UTC) + timedelta(days=1))
    assert pruned.events == 1 and pruned.files == 1
    await eventually(lambda: not stored.exists())  # the keeper deletes the copy
    await eventually(lambda: _forgotten(app, event_id))
    async with httpx.AsyncClient() as client:
        gone = await client.get(local(app, kept["kept_url"]))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


async def _forgotten(app: Any, event_id: str) -> bool:
    """Whether the pruned file's row is gone too, once its copy was deleted."""
    counts = await app.store.table_counts()
    return await app.store.kept_file(event_id, 0) is None and counts["kept_files"] == 0


@pytest.fixture
def bucket() -> Iterator[tuple[str, Any, str]]:
    """A real S3 API (moto's server) on loopback, with a bucket: its endpoint, a client and the
    bucket's name."""
    boto3 = pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
        )
        # moto keeps buckets per process, not per server: each test gets a bucket of its own.
        name = f"results-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=name)
        yield endpoint, client, name
    finally:
        server.stop()


S3_KEY = "AKIAKEPTRESULTS"
S3_SECRET = "kept-results-secret-key"


def s3_results(endpoint: str, bucket: str) -> str:
    return (
        f'store = "s3"\nbucket = "{bucket}"\nprefix = "photohook/"\n'
        f'endpoint_url = "{endpoint}"\nregion = "us-east-1"\n'
        'access_key_id = "env:S3_KEY"\nsecret_access_key = "env:S3_SECRET"\n'
    )


async def test_an_s3_compatible_store_keeps_the_result_behind_a_presigned_link(
    photohook: Start,
    sink_url: Callable[[Sink], str],
    origin: tuple[Origin, str],
    bucket: tuple[str, Any, str],
) -> None:
    endpoint, client, name = bucket
    served, base = origin
    image = png(colour=b"\x00\x00\xff")
    served.files["out.png"] = image
    sink = Sink()
    text = config(sink_url(sink), s3_results(endpoint, name)).replace(
        f'base_url = "{PUBLIC}"\n', ""
    )
    app = await photohook(text, {"S3_KEY": S3_KEY, "S3_SECRET": S3_SECRET})
    [event_id] = await app.send(resultUrl=f"{base}/r/out.png")
    await eventually(lambda: len(sink.received) == 1)
    [kept] = sink.received[0].json()["kept_results"]
    assert kept["status"] == "kept"
    assert kept["kept_url"].startswith(f"{endpoint}/{name}/photohook/{event_id}/0-out.png?")
    assert "X-Amz-Signature=" in kept["kept_url"]
    head = client.head_object(Bucket=name, Key=f"photohook/{event_id}/0-out.png")
    assert head["ContentType"] == "image/png" and head["ContentLength"] == len(image)

    served.serving = False
    async with httpx.AsyncClient() as http:
        answer = await http.get(kept["kept_url"])
    assert answer.status_code == 200
    assert hashlib.sha256(answer.content).hexdigest() == kept["sha256"]

    # What a report on the event after the fact (a batch's summary) gets.
    s3 = S3Config(name, "photohook", endpoint, "us-east-1", Secret(S3_KEY), Secret(S3_SECRET))
    results = result_store(ResultsConfig(store="s3", s3=s3), "", None)
    event = await app.store.get_event(event_id)
    found = await kept_results(app.store, results, [event])
    [again] = found[event_id]
    assert (again.status, again.sha256, again.size) == ("kept", kept["sha256"], len(image))
    async with httpx.AsyncClient() as http:
        assert (await http.get(again.kept_url)).content == image

    pruned = await app.store.prune(datetime.now(UTC) + timedelta(days=1))
    assert pruned.files == 1
    await eventually(lambda: _forgotten(app, event_id))  # after the copy was deleted
    listed = client.list_objects_v2(Bucket=name, Prefix="photohook/")
    assert listed.get("KeyCount", 0) == 0


async def test_a_batch_event_waits_for_its_tasks_files_and_lists_their_stable_links(
    photohook: Start, sink_url: Callable[[Sink], str], origin: tuple[Origin, str]
) -> None:
    served, base = origin
    images = {f"{n}.png": png(colour=bytes([n, 0, 0])) for n in (1, 2)}
    served.files.update(images)
    served.failures = 1  # the first fetch fails: the batch completes before its files are kept
    sink = Sink(secret=SECRET)
    app = await photohook(
        '[sources.fotor]\nkeep_results = true\nbatch_key = "^(order-\\\\d+)-"\n'
        "batch_expected = 2\n"
        f'[destinations.app]\nurl = "{sink_url(sink)}/hook"\nsecret = "{SECRET}"\n'
        '[[routes]]\ntype = ["batch.*"]\nto = ["app"]\n'
        f'[results]\nallow_private = true\nbase_url = "{PUBLIC}"\nretry_schedule = ["0.2s"]\n'
    )
    ids = {}
    for n in (1, 2):
        [ids[n]] = await app.send(
            taskId=f"task-{n}", businessId=f"order-7-{n}", resultUrl=f"{base}/r/{n}.png"
        )
    await eventually(lambda: len(sink.received) == 1)
    body = sink.received[0].json()
    assert body["type"] == "batch.completed"
    tasks = {task["task_id"]: task for task in body["payload"]["tasks"]}
    async with httpx.AsyncClient() as client:
        for n in (1, 2):
            [kept] = tasks[f"task-{n}"]["kept_results"]
            assert kept["status"] == "kept"  # not sent before the file was
            answer = await client.get(local(app, kept["kept_url"]))
            assert answer.content == images[f"{n}.png"]
