"""The commands that run photohook or set it up: ``serve``, ``worker``, ``url``, ``secret``,
``check``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from receiver import eventloop, redact
from receiver.config.durations import format_duration
from receiver.config.settings import Settings
from receiver.delivery.brokers import publisher_for, scrub
from receiver.destinations import BrokerDestination, HTTPDestination
from receiver.errors import PhotohookError
from receiver.routing import Router
from receiver.store import BatchRule, Store, open_store

if TYPE_CHECKING:
    from receiver.observability.metrics import Metrics
from receiver.cli._common import no_source, with_store


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the receiver, and the delivery worker unless --no-worker."""
    from receiver.observability.logs import configure_logging
    from receiver.observability.metrics import drop_created_series
    from receiver.web.server import serve

    if not args.no_worker:
        settings = settings.with_callables()  # a broken handler stops serve at once
    configure_logging(settings.log_level, settings.log_format)
    drop_created_series()
    serve(settings, worker=not args.no_worker)
    return 0


def worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run a delivery worker alone (beside 'serve --no-worker', or several); with
    --metrics-port, it serves its own /metrics."""
    from receiver.background import Background
    from receiver.observability import tracing
    from receiver.observability.logs import configure_logging
    from receiver.observability.metrics import Metrics, drop_created_series

    settings = settings.with_callables()
    configure_logging(settings.log_level, settings.log_format)
    drop_created_series()
    tracing.configure()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        store = open_store(settings.database_url)
        await store.open(migrate=settings.migrate)
        try:
            metrics = Metrics(settings.sources, settings.destinations)
            background = Background(settings, store, Router(settings.routes), metrics=metrics)
            async with _metrics_server(settings, metrics, store):
                await background.start()
                eventloop.freeze_startup_objects()
                await stop.wait()
                await background.stop()
        finally:
            await store.close()
            tracing.flush()

    eventloop.run(run())
    return 0


@contextlib.asynccontextmanager
async def _metrics_server(
    settings: Settings, metrics: Metrics, store: Store
) -> AsyncIterator[None]:
    """A worker's ``/metrics`` on ``settings.metrics_port``, while the block runs (nothing
    without a port)."""
    if settings.metrics_port is None:
        yield
        return
    import uvicorn

    from receiver.web.admin.access import AdminAccess
    from receiver.web.metrics import metrics_app

    app = metrics_app(metrics, store, AdminAccess(settings.admin_token, settings.trusted_proxies))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.metrics_port,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_config=None,
    )
    where = _host_port(settings.host, settings.metrics_port)
    try:
        # Bound here, so that a port in use is an error of ours rather than uvicorn's exit.
        listening = _listen(settings.host, settings.metrics_port)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a name IDNA cannot encode
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PhotohookError(f"cannot serve metrics on {where}: {reason}") from None
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve([listening]), name="photohook-metrics")
    logging.getLogger("photohook.worker").info("metrics at http://%s/metrics", where)
    try:
        yield
    finally:
        server.should_exit = True
        await serving
        listening.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``'s first address, of whichever family it is (``::1`` is
    IPv6, a name may be either)."""
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return socket.create_server(address, family=family)


def _host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def url(settings: Settings, args: argparse.Namespace) -> int:
    """Print the URL to register with the provider for SOURCE."""
    from receiver.tokens import URLTokens
    from receiver.web.app import url_tokens

    source = settings.sources.get(args.source)
    if source is None:
        return no_source(settings, args.source)
    base = (args.base_url or settings.base_url or listen_url(settings)).rstrip("/")
    if "token" not in source.require:
        print(f"{base}/hooks/{source.name}")
        return 0
    if settings.secret_keys:
        tokens = URLTokens([key.reveal() for key in settings.secret_keys])
    else:
        tokens = with_store(settings, lambda store: url_tokens(settings, store))
    print(f"{base}/hooks/{source.name}/{tokens.token(source.name)}")
    return 0


def listen_url(settings: Settings) -> str:
    """Where ``serve`` listens, as a URL (an unspecified address as loopback)."""
    import ipaddress

    host = settings.host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{settings.port}"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{host}:{settings.port}"


def secret(settings: Settings, args: argparse.Namespace) -> int:
    """Print a new Standard Webhooks secret (whsec_...) for a destination's 'secret'."""
    from receiver.signing import new_secret

    print(new_secret())
    return 0


def check(settings: Settings, args: argparse.Namespace) -> int:
    """Validate the configuration and print the sources, destinations and routes."""
    settings = settings.with_callables()
    print(f"config: {settings.config_file or '(none; built-in defaults)'}")
    print(f"database: {redact.url(settings.database_url)}")
    print(f"max body: {settings.max_body_bytes} bytes")
    print(f"rejected requests kept: {settings.max_rejected_per_source} per source")
    proxies = ", ".join(str(n) for n in settings.trusted_proxies.networks) or "(none)"
    print(f"trusted proxies: {proxies}")
    for name, source in settings.sources.items():
        print(f"source {name}: kind {source.kind}, checks: {', '.join(sorted(source.require))}")
        if "ip" in source.require:
            print(f"  allow_ips: {', '.join(str(n) for n in source.allow_ips.networks)}")
        if "secret" in source.require:
            print(f"  secrets: {len(source.secrets)}")
        if source.keep_results:
            print("  result files kept before delivery")
        if source.max_rejected is not None:
            print(f"  rejected requests kept: {source.max_rejected}")
        if source.api_key is None:
            print("  not reconciled: no api_key")
        else:
            print(
                f"  reconciled with {source.api_base_url}: first check after "
                f"{format_duration(source.reconcile_after)}, lost after "
                f"{format_duration(source.reconcile_for)}"
                + (", terminal callbacks confirmed first" if source.confirm else "")
            )
        if source.batching is not None:
            print(f"  {_batching(source.batching)}")
    for name, destination in settings.destinations.items():
        print(f"destination {name}: {destination.target}")
        if isinstance(destination, HTTPDestination | BrokerDestination) and not destination.secrets:
            print("  unsigned: no secret is configured")
    if not settings.routes:
        print("routes: none; events are stored and not delivered")
    if settings.retention is not None:
        print(f"retention: {format_duration(settings.retention)}")
    for route in settings.routes:
        keeping = ", keeping result files" if route.keep_results else ""
        print(f"route {route.name}: {route.conditions()} -> {', '.join(route.to)}{keeping}")
    if settings.keeps_results:
        print(f"results: kept in {_results_where(settings)}")
    brokers = [d for d in settings.destinations.values() if isinstance(d, BrokerDestination)]
    if args.connect and brokers:
        answered = eventloop.run(connect_brokers(brokers))
        if not all(answered):
            return 1
    if args.connect and settings.keeps_results and not eventloop.run(_check_results(settings)):
        return 1
    print("ok")
    return 0


def _results_where(settings: Settings) -> str:
    config = settings.results
    if config.s3 is not None:
        return f"bucket {config.s3.bucket} (prefix {config.s3.prefix or '(none)'})"
    return str(config.folder(settings.database_url))


async def _check_results(settings: Settings) -> bool:
    """Whether the result store takes files now; ``check --connect``."""
    from receiver.errors import ResultStoreError
    from receiver.keeping import result_store

    try:
        await result_store(settings.results, settings.database_url, None).check()
    except ResultStoreError as exc:
        print(f"results: {exc}")
        return False
    print("results: the store takes files")
    return True


async def connect_brokers(destinations: list[BrokerDestination]) -> list[bool]:
    """Connect to each broker destination at once, printing which answer; ``check --connect``."""

    async def connect(destination: BrokerDestination) -> bool:
        publisher = publisher_for(destination)
        try:
            async with asyncio.timeout(destination.timeout):
                answered = await publisher.connect()
        except TimeoutError:
            print(
                f"destination {destination.name}: cannot connect: "
                f"no answer within {destination.timeout:g}s"
            )
            return False
        except Exception as exc:
            error = scrub(str(exc) or "connection failed", destination)
            print(f"destination {destination.name}: cannot connect: {type(exc).__name__}: {error}")
            return False
        finally:
            with contextlib.suppress(Exception):
                await publisher.aclose()
        print(f"destination {destination.name}: connected to {answered}")
        return True

    return list(await asyncio.gather(*(connect(d) for d in destinations)))


def _batching(rule: BatchRule) -> str:
    """What ``photohook check`` says of a source's batches."""
    named = [f"business id {rule.key.pattern}"] if rule.key is not None else []
    named += ["labels"] if rule.labels else []
    size = f"{rule.expected} tasks" if rule.expected is not None else "size set when closed"
    deadline = f", deadline {format_duration(rule.deadline)}" if rule.deadline else ""
    return f"batches named by {' and '.join(named)}: {size}{deadline}"
