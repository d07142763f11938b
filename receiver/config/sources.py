"""Reading ``[sources.NAME]``: the callback sources photohook receives from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from receiver.clientaddr import AddressSet
from receiver.config.file import Table
from receiver.secrets import Secret
from receiver.sources import KINDS
from receiver.store import BatchRule, Tracking

CHECKS = ("token", "ip", "secret")


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    """One configured callback source: ``[sources.NAME]``."""

    name: str
    kind: str
    require: frozenset[str]
    allow_ips: AddressSet = field(default_factory=AddressSet)
    secrets: tuple[Secret, ...] = ()
    api_key: Secret | None = None  # enables reconciling through the provider's status API
    api_base_url: str = ""
    reconcile_after: float = 600.0
    reconcile_for: float = 48 * 3600.0
    confirm: bool = False  # check terminal callbacks with the provider before routing them
    max_rejected: int | None = None  # rejected requests kept; None: [server]'s default
    keep_results: bool = False  # copy its events' result files into the result store
    #: Which batches its tasks join by themselves (``batch_key``, ``batch_labels``); None: none.
    batching: BatchRule | None = None
    #: How its tasks are reconciled, decided once from the above; None: it has no API key.
    tracking: Tracking | None = field(init=False)

    def __post_init__(self) -> None:
        tracking = None
        if self.api_key is not None:
            tracking = Tracking(self.reconcile_after, self.reconcile_for, self.confirm)
        object.__setattr__(self, "tracking", tracking)


def default_sources() -> dict[str, SourceConfig]:
    """The built-in sources used when the config file names none: ``fotor`` and ``cropphoto``."""
    return {name: read_source(Table({}, file="(defaults)", path=name), name) for name in KINDS}


def read_source(table: Table, name: str) -> SourceConfig:
    kind = table.take_str("kind", name if name in KINDS else "")
    if kind not in KINDS:
        problem = f"unknown kind {kind!r}" if kind else "kind is required"
        raise table.error("kind", f"{problem} (expected one of {', '.join(KINDS)})")
    secrets = table.take_secrets("secrets")
    default_require = ("secret",) if kind == "cropphoto" and secrets else ("token",)
    require = table.take_str_list("require", default_require)
    for check in require:
        if check not in CHECKS:
            raise table.error("require", f"unknown check {check!r} (expected token, ip, secret)")
    if not require:
        raise table.error("require", "at least one check is required (token, ip or secret)")
    allow_ips = table.take_networks("allow_ips", KINDS[kind].default_allow_ips)
    if "ip" in require and not allow_ips:
        raise table.error("allow_ips", "the 'ip' check needs at least one address")
    if "secret" in require and not secrets:
        raise table.error("secrets", "the 'secret' check needs at least one secret")
    api_keys = table.take_secrets("api_key")
    if len(api_keys) > 1:
        raise table.error("api_key", "give one API key")
    api_key = api_keys[0] if api_keys else None
    api_base_url = table.take_str("api_base_url", KINDS[kind].api_base_url).rstrip("/")
    if not api_base_url.startswith(("https://", "http://")):
        raise table.error("api_base_url", f"expected an http(s) URL, got {api_base_url!r}")
    reconcile_after = table.take_duration("reconcile_after", 600.0)
    reconcile_for = table.take_duration("reconcile_for", 48 * 3600.0)
    if reconcile_after <= 0 or reconcile_for <= reconcile_after:
        raise table.error("reconcile_for", "must be longer than reconcile_after (> 0)")
    confirm = table.take_bool("confirm", False)
    if confirm and api_key is None:
        raise table.error("confirm", "confirming callbacks needs the provider's api_key")
    max_rejected = table.take_int("max_rejected", -1)
    keep_results = table.take_bool("keep_results", False)
    batching = _read_batching(table)
    table.finish()
    return SourceConfig(
        name=name,
        kind=kind,
        require=frozenset(require),
        allow_ips=allow_ips,
        secrets=secrets,
        api_key=api_key,
        api_base_url=api_base_url,
        reconcile_after=reconcile_after,
        reconcile_for=reconcile_for,
        confirm=confirm,
        max_rejected=max_rejected if max_rejected >= 0 else None,
        keep_results=keep_results,
        batching=batching,
    )


def _read_batching(table: Table) -> BatchRule | None:
    """``batch_key``, ``batch_labels``, ``batch_expected`` and ``batch_deadline``."""
    pattern = table.take_str("batch_key", "")
    key = None
    if pattern:
        try:
            key = re.compile(pattern)
        except re.error as exc:
            raise table.error("batch_key", f"not a valid regular expression: {exc}") from None
    labels = table.take_bool("batch_labels", False)
    expected = table.take_int("batch_expected", 0)
    if expected < 0:
        raise table.error("batch_expected", "must be a positive number of tasks")
    deadline = table.take_duration("batch_deadline", 0.0)
    if deadline < 0:
        raise table.error("batch_deadline", "must be a positive duration")
    if key is None and not labels:
        for name in ("batch_expected", "batch_deadline"):
            if (expected if name == "batch_expected" else deadline) > 0:
                raise table.error(name, "needs batch_key or batch_labels to name the batches")
        return None
    return BatchRule(key, labels, expected or None, deadline or None)
