"""prometheus_client's ``_created`` series: ``photohook serve`` and ``worker`` turn them off for
their process; building photohook's metrics (as ``create_app`` does in a host application)
leaves the host's switch alone."""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, enable_created_metrics, generate_latest

from receiver import eventloop
from receiver.cli import parser as cli
from receiver.observability import logs
from receiver.observability.metrics import Metrics
from receiver.web import server


@pytest.fixture(autouse=True)
def _created_series_on() -> Iterator[None]:
    enable_created_metrics()
    yield
    enable_created_metrics()


def created_series() -> bool:
    """Whether a counter of the host's own has a ``_created`` series now."""
    registry = CollectorRegistry()
    Counter("host_things", "The host application's things.", registry=registry).inc()
    return "host_things_created" in generate_latest(registry).decode()


def test_photohooks_metrics_leave_the_host_applications_created_series_alone() -> None:
    Metrics(["fotor"], ["app"])
    assert created_series()


def test_serve_and_worker_turn_the_created_series_off_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, bool] = {}

    def serving(settings: object, *, worker: bool) -> None:
        seen["serve"] = created_series()

    def running(work: Coroutine[Any, Any, None]) -> None:
        work.close()
        seen["worker"] = created_series()

    monkeypatch.setattr(logs, "configure_logging", lambda level, format: None)
    monkeypatch.setattr(server, "serve", serving)
    monkeypatch.setattr(eventloop, "run", running)
    assert cli.main(["serve"]) == 0
    enable_created_metrics()
    assert cli.main(["worker"]) == 0
    assert seen == {"serve": False, "worker": False}
