"""Running the application under uvicorn: in this process, or in ``WEB_CONCURRENCY`` processes
that share the listening socket."""

from __future__ import annotations

import json
import os
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from receiver import eventloop
from receiver.config.settings import Settings
from receiver.store import open_store
from receiver.web._protocol import guarded_protocol
from receiver.web.app import create_app

#: Seconds that in-flight requests get to finish after SIGTERM or SIGINT.
GRACEFUL_SHUTDOWN_SECONDS = 30
#: What the parent passes its processes: the settings it was given on its command line.
_GIVEN = "PHOTOHOOK_SERVE_GIVEN"


def serve(settings: Settings, *, worker: bool = True) -> None:
    """Serve until SIGTERM or SIGINT: then stop accepting, finish in-flight requests and their
    commits, and close the database."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "auto",  # uvloop where installed (uvicorn[standard])
        # httptools, with limits on header size and on the time headers may take to arrive.
        "http": guarded_protocol(settings.header_timeout),
        "lifespan": "on",
        # photohook reads X-Forwarded-For itself, and only from [server] trusted_proxies.
        "proxy_headers": False,
        "server_header": False,
        # uvicorn's access log would print the token in the path; photohook logs each request.
        "access_log": False,
        "log_config": None,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "workers": settings.processes,
    }
    # Open the database first: an unreachable or unmigrated one is one clear error line, not a
    # failed lifespan; and with several processes, migrations run once, before they start.
    eventloop.run(_prepare_database(settings))
    if settings.processes == 1:
        server = uvicorn.Server(uvicorn.Config(create_app(settings, worker=worker), **options))
        eventloop.freeze_startup_objects()
        server.run()
        return
    os.environ[_GIVEN] = json.dumps(
        {
            "config_file": str(settings.config_file) if settings.config_file else None,
            "database_url": settings.database_url,
            "log_level": settings.log_level,
            "log_format": settings.log_format,
            "app_dir": str(settings.app_dir) if settings.app_dir else None,
            "worker": worker,
        }
    )
    config = uvicorn.Config("receiver.web.server:process_app", factory=True, **options)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def process_app() -> ASGIApp:
    """The application of one of ``serve``'s processes, configured as the parent was."""
    from receiver.observability.logs import configure_logging
    from receiver.observability.metrics import drop_created_series

    drop_created_series()  # as the parent did: each process is a new interpreter
    given = json.loads(os.environ[_GIVEN])
    settings = Settings.load(
        config_file=given["config_file"],
        database_url=given["database_url"],
        log_level=given["log_level"],
        log_format=given["log_format"],
        migrate=False,
        app_dir=given["app_dir"],
        import_callables=False,  # create_app imports them when this process delivers
    )
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings, worker=given["worker"])
    eventloop.freeze_startup_objects()
    return app


async def _prepare_database(settings: Settings) -> None:
    store = open_store(settings.database_url)
    await store.open(migrate=settings.migrate)
    await store.close()
