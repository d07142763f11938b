"""How the reference databases in tests/fixtures/databases/ were made; run once, kept as they are.

    python -m tests.golden.make_databases [DIRECTORY]   # default: tests/fixtures/databases

photohook itself writes every row: callbacks go through the real app under uvicorn, its worker
delivers them to real sinks on loopback (answering 200, 503 then 200, 500, 410, or not at all)
and its reconciler asks fake provider APIs, so that events, receipts, deliveries in every state,
attempts, tasks in every state and destinations of every state are there. A second run of the
app without its worker leaves a few deliveries pending and a task confirming. The SQLite file is
then imported into a PostgreSQL schema with ``photohook import`` and dumped with ``pg_dump``.

Do not run it for a schema change: these files stand for a database an earlier photohook wrote.
"""

from __future__ import annotations

import asyncio
import io
import re
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import ExitStack, redirect_stdout
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from receiver import Settings, create_app
from receiver.cli.parser import main as photohook
from receiver.store import DeliveryQuery, Store, open_store
from receiver.tokens import URLTokens
from tests.helpers import FOTOR_IP, asgi_client, fixture, free_port
from tests.integration.providers import API_KEY, FakeCropPhoto, FakeFotor
from tests.integration.servers import Reply, Sink, eventually, running
from tests.postgres import isolated_schema

OUT = Path(__file__).parents[1] / "fixtures" / "databases"
KEY = "reference-database-key"
CROP_SECRET = "reference-crop-secret"
SINK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SCHEMA_MARK = "photohook_reference"


def config(api: dict[str, str], urls: dict[str, str]) -> str:
    return f"""
[server]
allow_private_destinations = true
trusted_proxies = ["127.0.0.1"]    # the Fotor source checks the address

[sources.fotor]
kind = "fotor"
require = ["token", "ip"]
api_key = "{API_KEY}"
api_base_url = "{api["fotor"]}"
reconcile_after = "200ms"
reconcile_for = "3s"

[sources.fotor-eu]
kind = "fotor"
api_key = "{API_KEY}"
api_base_url = "{api["fotor"]}"
reconcile_after = "10m"
reconcile_for = "48h"

[sources.crop]
kind = "cropphoto"
secrets = ["env:CROP_SECRET"]
api_key = "{API_KEY}"
api_base_url = "{api["crop"]}"
reconcile_after = "200ms"
confirm = true

[destinations.app]
url = "{urls["app"]}/hooks/photohook"
secret = "{SINK_SECRET}"
headers = {{ "X-Team" = "imaging" }}

[destinations.flaky]
url = "{urls["flaky"]}/in"
retry_schedule = ["1s", "1s"]

[destinations.broken]
url = "{urls["broken"]}/in"
timeout = "2s"
retry_schedule = ["100ms"]

[destinations.slow]
url = "{urls["slow"]}/in"
retry_schedule = ["1h"]

[destinations.gone]
url = "{urls["gone"]}/in"

[destinations.ops]
url = "{urls["ops"]}/in"

[destinations.log]
handler = "handlers.log:print_event"

[[routes]]
name = "everything-fotor"
source = ["fotor", "fotor-eu"]
to = ["app"]

[[routes]]
name = "finished"
status = "completed"
to = ["flaky"]

[[routes]]
name = "orders"
business_id = "order-*"
to = ["broken"]

[[routes]]
name = "failures"
status = "failed"
to = ["slow"]

[[routes]]
name = "avatars"
task_type = "avatar"
to = ["gone"]

[[routes]]
name = "flagged"
flagged = true
to = ["ops"]

[[routes]]
name = "banners"
source = "crop"
to = ["log", "app"]
"""


def fotor_body(name: str, **changes: Any) -> dict[str, Any]:
    return fixture(f"fotor/{name}") | changes


async def settled(store: Store) -> bool:
    """Whether the worker has done all it will do soon: nothing pending or leased."""
    found = await store.list_deliveries(DeliveryQuery(limit=1000))
    return all(d.state not in ("pending", "confirming") for d in found) and all(
        d.state != "retrying" or d.destination == "slow" or d.attempts >= 1 for d in found
    )


async def fill(database_url: str, workdir: Path) -> None:
    fotor, crop = FakeFotor(), FakeCropPhoto()
    sinks = {
        "app": Sink(SINK_SECRET),
        "flaky": Sink(script=lambda n: Reply(503, {"Retry-After": "1"}) if n == 0 else Reply()),
        "slow": Sink(script=lambda n: Reply(500)),
        "gone": Sink(script=lambda n: Reply(410)),
        "ops": Sink(),
    }
    environ = {"PHOTOHOOK_SECRET_KEYS": KEY, "CROP_SECRET": CROP_SECRET}
    with ExitStack() as servers:
        api = {
            "fotor": servers.enter_context(running(fotor.app, lifespan="off")),
            "crop": servers.enter_context(running(crop.app, lifespan="off")),
        }
        urls = {
            name: servers.enter_context(running(s.app, lifespan="off")) for name, s in sinks.items()
        }
        urls["broken"] = f"http://127.0.0.1:{free_port()}"  # nothing listens
        (workdir / "photohook.toml").write_text(config(api, urls))
        settings = Settings.load(
            config_file=workdir / "photohook.toml", database_url=database_url, environ=environ
        )
        base = servers.enter_context(running(create_app(settings)))
        store = open_store(database_url)
        await store.open()
        tokens = URLTokens([KEY])
        completed = fixture("fotor/upscale-completed")
        crop.tasks["bj_7d2f0c1e9a"] = fixture("cropphoto/banner-job-completed")  # confirms
        crop.tasks["bj_0000ffff11"] = fixture("cropphoto/banner-job-completed") | {
            "job_id": "bj_0000ffff11"
        }  # contradicts the failed callback
        fotor.tasks["f4a1c0de00000000000000000000beef"] = completed | {
            "taskId": "f4a1c0de00000000000000000000beef",
            "businessId": "order-registered-7",
        }  # recovered by polling
        async with httpx.AsyncClient(base_url=base) as c:
            assert (await c.post("/api/destinations/ops/pause")).status_code == 200

            async def post(source: str, body: Any, secret: str | None = None) -> None:
                headers = {"X-WEBHOOK-SECRET": secret} if secret else {"X-Forwarded-For": FOTOR_IP}
                answer = await c.post(
                    f"/hooks/{source}/{tokens.token(source)}", json=body, headers=headers
                )
                assert answer.status_code == 200, answer.text

            await post("fotor", fotor_body("upscale-in-progress"))
            await post("fotor", completed)
            await post("fotor", completed)  # a duplicate, the same body
            await post("fotor", completed | {"newField": 1})  # a duplicate with another body
            await post("fotor", fotor_body("bg-remove-failed"))
            await post("fotor", fotor_body("avatar-completed"))
            await post("fotor", fotor_body("avatar-completed", status=0))  # late: skipped
            await post("fotor", fotor_body("upscale-in-progress", taskId="5e7f" + "0" * 28))  # lost
            for job in ("banner-job-completed", "banner-job-failed"):
                await post("crop", fixture(f"cropphoto/{job}"), secret=CROP_SECRET)
            for source, task_id, business_id in (
                ("fotor", "f4a1c0de00000000000000000000beef", "order-registered-7"),
                ("fotor-eu", "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0", None),  # stays tracked
            ):
                answer = await c.post(
                    "/api/tasks",
                    json={"source": source, "task_id": task_id, "business_id": business_id},
                )
                assert answer.status_code in (200, 201), answer.text
        await eventually(lambda: len(sinks["gone"].received) >= 1, within=30)

        async def done() -> bool:
            tasks = {t.task_id: t.state for t in await store.list_tasks()}
            return (
                await settled(store)
                and tasks.get("5e7f" + "0" * 28) == "lost"
                and tasks.get("bj_0000ffff11") == "unconfirmed"
                and tasks.get("f4a1c0de00000000000000000000beef") == "done"
            )

        await eventually(done, within=60)
        await store.close()
    # Without a worker: the deliveries of these callbacks stay pending, the task confirming.
    settings = Settings.load(
        config_file=workdir / "photohook.toml", database_url=database_url, environ=environ
    )
    async with asgi_client(create_app(settings, worker=False)) as client:
        for source, body, headers in (
            ("fotor-eu", fotor_body("upscale-in-progress", taskId="ab12" + "0" * 28), {}),
            ("fotor-eu", fotor_body("upscale-completed", taskId="cd34" + "0" * 28), {}),
            ("crop", fixture("cropphoto/banner-status-shape"), {"X-WEBHOOK-SECRET": CROP_SECRET}),
        ):
            url = f"/hooks/{source}/{tokens.token(source)}"
            answer = await client.post(url, json=body, headers=headers)
            assert answer.status_code == 200, answer.text


def postgres_dump(sqlite_url: str, workdir: Path) -> str:
    export = workdir / "export.jsonl"
    assert photohook(["export", "--db", sqlite_url, "--output", str(export)]) == 0
    with isolated_schema() as url:
        with redirect_stdout(io.StringIO()):
            assert photohook(["import", "--db", url, str(export)]) == 0
        schema = dict(parse_qsl(urlsplit(url).query))["search_path"]
        parts = urlsplit(url)
        dump = subprocess.run(
            [
                "pg_dump",
                "--schema",
                schema,
                "--inserts",
                "--no-owner",
                "--no-privileges",
                "--host",
                parts.hostname or "127.0.0.1",
                "--port",
                str(parts.port or 5432),
                "--username",
                parts.username or "postgres",
                parts.path.lstrip("/"),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    # The test restores into a schema of its own, over a plain connection: no CREATE SCHEMA, and
    # no psql meta-commands (pg_dump's \restrict lines).
    dump = re.sub(rf"^CREATE SCHEMA {schema};\n", "", dump, flags=re.MULTILINE)
    dump = re.sub(r"^\\(un)?restrict .*\n", "", dump, flags=re.MULTILINE)
    return dump.replace(schema, SCHEMA_MARK)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database = workdir / "photohook.db"
        url = f"sqlite:///{database}"
        asyncio.run(fill(url, workdir))
        target = out / "photohook.sqlite"
        target.unlink(missing_ok=True)
        with sqlite3.connect(database) as connection:
            connection.execute("VACUUM INTO ?", (str(target),))
        (out / "photohook.postgresql.sql").write_text(postgres_dump(f"sqlite:///{target}", workdir))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
