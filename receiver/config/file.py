"""Reading ``photohook.toml``: every value checked, every error naming the file and the key."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from receiver.clientaddr import AddressSet, parse_network
from receiver.config.durations import parse_duration
from receiver.errors import ConfigError
from receiver.secrets import Secret, resolve_secret

T = TypeVar("T")

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


class Table:
    """One table of the config file being read.

    Each ``take_*`` reads one key and checks its type; ``finish()`` reports keys nobody read, so
    a typo is an error rather than a silently ignored setting.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        file: str,
        path: str = "",
        environ: Mapping[str, str] = os.environ,
        strict_secrets: bool = True,
    ) -> None:
        self.data = data
        self.file = file
        self.path = path
        self.environ = environ
        #: False: an ``env:NAME`` secret whose variable is unset is read as an UnsetSecret.
        self.strict_secrets = strict_secrets
        self._read: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.key(key)}: {message}")

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def _take(self, key: str, expected: type[T] | tuple[type, ...], what: str) -> T | None:
        self._read.add(key)
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) and expected is not bool:
            raise self.error(key, f"expected {what}, got {value!r}")
        if not isinstance(value, expected):
            raise self.error(key, f"expected {what}, got {type(value).__name__} {value!r}")
        return value  # type: ignore[return-value]

    def take_str(self, key: str, default: str) -> str:
        value = self._take(key, str, "a string")
        return default if value is None else value

    def take_optional_str(self, key: str) -> str | None:
        return self._take(key, str, "a string")

    def take_int(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self._take(key, int, "a whole number")
        if value is None:
            return default
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def take_bool(self, key: str, default: bool) -> bool:
        value = self._take(key, bool, "true or false")
        return default if value is None else value

    def take_duration(self, key: str, default: float) -> float:
        value = self._take(key, (str, int, float), "a duration such as '15s' or '7d'")
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def take_list(self, key: str, default: list[Any] | None) -> list[Any] | None:
        value = self._take(key, list, "a list")
        return default if value is None else value

    def duration_of(self, key: str, index: int, value: Any) -> float:
        """An item of a list of durations, checked."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(f"{key}[{index}]", f"expected a duration such as '5m', got {value!r}")
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(f"{key}[{index}]", str(exc)) from None

    def take_array(self, key: str) -> list[Table]:
        """An array of tables, such as ``[[routes]]``."""
        items = self.take_list(key, []) or []
        tables = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.error(f"{key}[{index}]", f"expected a table, got {item!r}")
            tables.append(self._child(item, self.key(f"{key}[{index}]")))
        return tables

    def take_str_list(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """A list of strings; a single string is a list of one."""
        value = self._take(key, (str, list), "a string or a list of strings")
        if value is None:
            return default
        items = [value] if isinstance(value, str) else value
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise self.error(f"{key}[{index}]", f"expected a string, got {item!r}")
        return tuple(items)

    def take_networks(self, key: str, default: tuple[str, ...] = ()) -> AddressSet:
        networks = []
        for index, item in enumerate(self.take_str_list(key, default)):
            try:
                networks.append(parse_network(item))
            except ValueError:
                raise self.error(
                    f"{key}[{index}]", f"{item!r} is not an IP address or CIDR block"
                ) from None
        return AddressSet(networks)

    def take_secrets(self, key: str) -> tuple[Secret, ...]:
        """Secrets given as literals or ``env:NAME``; several mean rotation."""
        secrets = []
        for index, item in enumerate(self.take_str_list(key)):
            try:
                secrets.append(resolve_secret(item, self.environ, strict=self.strict_secrets))
            except (LookupError, ValueError) as exc:
                raise self.error(f"{key}[{index}]", str(exc).strip("'\"")) from None
        return tuple(secrets)

    def take_table(self, key: str) -> Table:
        value = self._take(key, dict, "a table")
        return self._child(value or {}, self.key(key))

    def take_tables(self, key: str) -> dict[str, Table]:
        """A table of named tables, such as ``[sources.NAME]``; names are checked."""
        tables = {}
        for name, value in self.take_table(key).data.items():
            if not NAME_PATTERN.match(name):
                raise self.error(
                    f"{key}.{name}",
                    "names use lowercase letters, digits, '-' and '_' (at most 64)",
                )
            if not isinstance(value, dict):
                raise self.error(f"{key}.{name}", f"expected a table, got {value!r}")
            tables[name] = self._child(value, self.key(f"{key}.{name}"))
        return tables

    def _child(self, data: Mapping[str, Any], path: str) -> Table:
        return Table(
            data,
            file=self.file,
            path=path,
            environ=self.environ,
            strict_secrets=self.strict_secrets,
        )

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            raise self.error(unknown[0], "unknown key")
