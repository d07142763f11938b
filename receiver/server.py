"""Running the application under uvicorn."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .protocol import guarded_protocol
from .settings import Settings

#: Seconds that in-flight requests get to finish after SIGTERM or SIGINT.
GRACEFUL_SHUTDOWN_SECONDS = 30


def serve(settings: Settings, *, worker: bool = True) -> None:
    """Serve until SIGTERM or SIGINT: then stop accepting, finish in-flight requests and their
    commits, and close the database."""
    config = uvicorn.Config(
        create_app(settings, worker=worker),
        host=settings.host,
        port=settings.port,
        loop="auto",  # uvloop where installed (uvicorn[standard])
        # httptools, with limits on header size and on the time headers may take to arrive.
        http=guarded_protocol(settings.header_timeout),
        lifespan="on",
        # photohook reads X-Forwarded-For itself, and only from [server] trusted_proxies.
        proxy_headers=False,
        server_header=False,
        # uvicorn's access log would print the token in the path; photohook logs each request.
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    uvicorn.Server(config).run()
