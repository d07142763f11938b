"""Settings: read once at start-up from command-line flags, the environment and the config file.

Flags win over environment variables, which win over the file, which wins over the defaults.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from receiver.clientaddr import AddressSet
from receiver.config.destinations import imported, read_destination
from receiver.config.file import Table, load_toml
from receiver.config.results import ResultsConfig, read_results
from receiver.config.routes import read_route
from receiver.config.sources import SourceConfig, default_sources, read_source
from receiver.destinations import (
    BrokerDestination,
    Destination,
    Handler,
    HandlerDestination,
    HTTPDestination,
    Transform,
)
from receiver.errors import ConfigError
from receiver.routing import Route
from receiver.secrets import Secret
from receiver.sources import KINDS
from receiver.store.batches import SOURCE as BATCH_SOURCE
from receiver.store.batches import STATUSES as BATCH_STATUSES

DEFAULT_CONFIG_FILE = "photohook.toml"
DEFAULT_DATABASE_URL = "sqlite:///photohook.db"
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

#: The environment variables photohook reads, for ``--help``.
ENVIRONMENT = {
    "PHOTOHOOK_CONFIG": f"config file (default: ./{DEFAULT_CONFIG_FILE} if present)",
    "PHOTOHOOK_DATABASE_URL": f"database URL (default: {DEFAULT_DATABASE_URL})",
    "PHOTOHOOK_SECRET_KEYS": "keys for URL tokens, comma-separated, newest first "
    "(default: a key generated once and kept in the database)",
    "PHOTOHOOK_HOST": "address to listen on (default: 127.0.0.1)",
    "PORT": "port to listen on (default: 8000)",
    "WEB_CONCURRENCY": "processes 'serve' runs on that port (default: 1)",
    "PHOTOHOOK_LOG_LEVEL": "log level (default: info)",
    "PHOTOHOOK_LOG_FORMAT": "log format: text or json (default: text)",
    "PHOTOHOOK_ADMIN_TOKEN": "bearer token of the admin API and dashboard "
    "(default: unset, loopback clients only)",
    "PHOTOHOOK_BASE_URL": "public base URL 'url' prints (default: http://HOST:PORT as 'serve')",
    "PHOTOHOOK_APP_DIR": "folder handler and transform modules are imported from "
    "(default: the working directory)",
    "PHOTOHOOK_METRICS_PORT": "port of a 'worker' process's own /metrics, on PHOTOHOOK_HOST "
    "(default: none)",
}
#: How many authenticated callbacks refused for their content each source keeps, by default.
DEFAULT_MAX_REJECTED = 10_000
#: Duplicates must be recognised for at least this long (Crop.photo resends for ~1.5 hours).
MINIMUM_RETENTION = 7 * 86400


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything photohook is configured with, fixed for the life of the process.

    Build it with :meth:`Settings.load`; secrets are :class:`~receiver.secrets.Secret`
    values that never print themselves.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str | None = None  # what `photohook url` prints; None: http://host:port
    database_url: str = DEFAULT_DATABASE_URL
    config_file: Path | None = None
    secret_keys: tuple[Secret, ...] = ()
    max_body_bytes: int = 262_144
    trusted_proxies: AddressSet = field(default_factory=AddressSet)
    sources: Mapping[str, SourceConfig] = field(default_factory=default_sources)
    allow_private_destinations: bool = False
    destinations: Mapping[str, Destination] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    header_timeout: float = 10.0  # seconds a client may take to send a request's headers
    body_timeout: float = 30.0  # seconds a client may take to send a callback's body
    admin_token: Secret | None = None
    retention: float | None = None  # seconds; None keeps everything
    log_level: str = "info"
    log_format: str = "text"
    access_log: bool = True  # a line per accepted callback (refusals and failures always)
    max_rejected_per_source: int = DEFAULT_MAX_REJECTED  # rejected requests kept per source
    migrate: bool = True  # apply pending database migrations at start-up
    processes: int = 1  # how many processes `serve` runs (WEB_CONCURRENCY)
    #: The folder handler and transform modules are imported from, put first on the import path
    #: as uvicorn's ``--app-dir`` does (PHOTOHOOK_APP_DIR). None: the import path is left as it
    #: is; ``photohook serve``, ``worker`` and ``check`` give the working directory.
    app_dir: Path | None = None
    metrics_port: int | None = None  # where `photohook worker` serves /metrics; None: nowhere
    results: ResultsConfig = field(default_factory=ResultsConfig)  # [results]: kept result files

    @property
    def keeps_results(self) -> bool:
        """Whether any source or route says ``keep_results``."""
        return any(source.keep_results for source in self.sources.values()) or any(
            route.keep_results for route in self.routes
        )

    def public_url(self) -> str:
        """photohook's public base URL: ``PHOTOHOOK_BASE_URL``, else http://HOST:PORT."""
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def rejected_cap(self, source: str) -> int:
        """How many rejected requests ``source`` keeps."""
        config = self.sources.get(source)
        if config is not None and config.max_rejected is not None:
            return config.max_rejected
        return self.max_rejected_per_source

    @classmethod
    def load(
        cls,
        *,
        config_file: str | Path | None = None,
        database_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        log_level: str | None = None,
        log_format: str | None = None,
        migrate: bool = True,
        processes: int | None = None,
        metrics_port: int | None = None,
        handlers: Mapping[str, Handler] | None = None,
        transforms: Mapping[str, Transform] | None = None,
        environ: Mapping[str, str] = os.environ,
        resolve_secrets: bool = True,
        app_dir: str | Path | None = None,
        import_callables: bool = True,
    ) -> Settings:
        """Read the flags given here, then the environment, then the config file.

        With ``import_callables=False``, the handlers and transforms the file names are not
        imported until :meth:`with_callables` (a web process that does not deliver never needs
        them). With ``resolve_secrets=False`` (commands that neither sign nor deliver), an
        ``env:NAME`` secret whose variable is unset is an
        :class:`~receiver.secrets.UnsetSecret`, not an error.

        ``handlers`` adds handler destinations given as callables (named by the keys, for routes
        to name in ``to``); ``transforms`` sets the transform of the named HTTP destinations.
        Raises :class:`~receiver.errors.ConfigError` with the file, key and problem.
        """
        path = _config_path(config_file, environ)
        document = load_toml(path) if path is not None else {}
        root = Table(
            document,
            file=str(path or DEFAULT_CONFIG_FILE),
            environ=environ,
            strict_secrets=resolve_secrets,
        )
        server = root.take_table("server")
        max_body_bytes = server.take_int("max_body_bytes", 262_144, minimum=1024)
        trusted_proxies = server.take_networks("trusted_proxies")
        allow_private = server.take_bool("allow_private_destinations", False)
        header_timeout = server.take_duration("header_timeout", 10.0)
        body_timeout = server.take_duration("body_timeout", 30.0)
        if header_timeout <= 0 or body_timeout <= 0:
            raise server.error("header_timeout", "timeouts must be more than 0")
        access_log = server.take_bool("access_log", True)
        max_rejected = server.take_int("max_rejected_per_source", DEFAULT_MAX_REJECTED)
        retention = server.take_duration("retention", 0) or None
        if retention is not None and retention < MINIMUM_RETENTION:
            raise server.error(
                "retention", "must be at least 7d, so that provider resends are still recognised"
            )
        server.finish()
        results = read_results(root.take_table("results"), allow_private=allow_private)
        sources = (
            {name: read_source(table, name) for name, table in root.take_tables("sources").items()}
            if "sources" in root
            else default_sources()
        )
        if not sources:
            raise root.error("sources", "at least one source is required")
        if BATCH_SOURCE in sources:
            raise root.error(
                f"sources.{BATCH_SOURCE}", "the name is reserved for the events of batches"
            )
        given_dir = app_dir or environ.get("PHOTOHOOK_APP_DIR")
        folder = Path(given_dir).absolute() if given_dir else None
        if import_callables and folder is not None:
            _on_import_path(folder)
        destinations = {
            name: read_destination(
                table, name, allow_private=allow_private, import_now=import_callables
            )
            for name, table in root.take_tables("destinations").items()
        }
        _add_callables(root, destinations, handlers or {}, transforms or {})
        statuses = {status for kind in KINDS.values() for status in kind.statuses}
        statuses |= set(BATCH_STATUSES)
        routes = tuple(
            read_route(
                table,
                index,
                sources=[*sources, BATCH_SOURCE],
                statuses=statuses,
                destinations=destinations,
            )
            for index, table in enumerate(root.take_array("routes"))
        )
        names = [route.name for route in routes]
        for name in names:
            if names.count(name) > 1:
                raise root.error("routes", f"two routes are named {name!r}")
        root.finish()

        env_port = environ.get("PORT") or None
        try:
            resolved_port = port if port is not None else int(env_port or 8000)
        except ValueError:
            raise ConfigError(f"PORT: expected a port number, got {env_port!r}") from None
        level = (log_level or environ.get("PHOTOHOOK_LOG_LEVEL") or "info").lower()
        if level not in LOG_LEVELS:
            raise ConfigError(f"log level: expected one of {', '.join(LOG_LEVELS)}, got {level!r}")
        fmt = (log_format or environ.get("PHOTOHOOK_LOG_FORMAT") or "text").lower()
        if fmt not in LOG_FORMATS:
            raise ConfigError(f"log format: expected text or json, got {fmt!r}")
        env_processes = environ.get("WEB_CONCURRENCY") or None
        try:
            resolved_processes = processes if processes is not None else int(env_processes or 1)
        except ValueError:
            raise ConfigError(
                f"WEB_CONCURRENCY: expected a number of processes, got {env_processes!r}"
            ) from None
        if not 1 <= resolved_processes <= 64:
            raise ConfigError(f"processes: expected 1 to 64, got {resolved_processes}")
        env_metrics_port = environ.get("PHOTOHOOK_METRICS_PORT") or None
        try:
            resolved_metrics_port = (
                metrics_port if metrics_port is not None else int(env_metrics_port or 0) or None
            )
        except ValueError:
            raise ConfigError(
                f"PHOTOHOOK_METRICS_PORT: expected a port number, got {env_metrics_port!r}"
            ) from None
        if resolved_metrics_port is not None and not 1 <= resolved_metrics_port <= 65535:
            raise ConfigError(f"metrics port: expected 1 to 65535, got {resolved_metrics_port}")
        keys = environ.get("PHOTOHOOK_SECRET_KEYS", "")
        return cls(
            host=host or environ.get("PHOTOHOOK_HOST") or "127.0.0.1",
            port=resolved_port,
            base_url=environ.get("PHOTOHOOK_BASE_URL") or None,
            database_url=database_url
            or environ.get("PHOTOHOOK_DATABASE_URL")
            or DEFAULT_DATABASE_URL,
            config_file=path,
            secret_keys=tuple(Secret(key.strip()) for key in keys.split(",") if key.strip()),
            max_body_bytes=max_body_bytes,
            trusted_proxies=trusted_proxies,
            sources=sources,
            allow_private_destinations=allow_private,
            destinations=destinations,
            routes=routes,
            admin_token=Secret(environ["PHOTOHOOK_ADMIN_TOKEN"])
            if environ.get("PHOTOHOOK_ADMIN_TOKEN")
            else None,
            retention=retention,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            log_level=level,
            log_format=fmt,
            access_log=access_log,
            max_rejected_per_source=max_rejected,
            migrate=migrate,
            processes=resolved_processes,
            app_dir=folder,
            metrics_port=resolved_metrics_port,
            results=results,
        )

    def with_callables(self) -> Settings:
        """These settings with every handler and transform imported (from :attr:`app_dir` first,
        where given); raises :class:`~receiver.errors.ConfigError` naming the file, key and
        problem."""
        if self.app_dir is not None:
            _on_import_path(self.app_dir)
        destinations = {name: imported(d) for name, d in self.destinations.items()}
        return replace(self, destinations=destinations)


def _on_import_path(folder: Path) -> None:
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def _add_callables(
    root: Table,
    destinations: dict[str, Destination],
    handlers: Mapping[str, Handler],
    transforms: Mapping[str, Transform],
) -> None:
    for name, handler in handlers.items():
        if name in destinations:
            raise root.error(f"destinations.{name}", "also given as a handler in code")
        destinations[name] = HandlerDestination(name=name, handler=handler)
    for name, transform in transforms.items():
        destination = destinations.get(name)
        if not isinstance(destination, HTTPDestination | BrokerDestination):
            raise root.error(
                f"destinations.{name}", "a transform needs an HTTP or a broker destination"
            )
        destinations[name] = replace(destination, transform=transform)


def _config_path(config_file: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    explicit = config_file or environ.get("PHOTOHOOK_CONFIG")
    if explicit:
        return Path(explicit)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None
