"""The long-running commands leave their start-up objects out of later garbage collections."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from receiver import eventloop
from receiver.cli import service
from receiver.config.settings import Settings
from receiver.web import server


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run collects as usual


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_start_up_garbage_is_collected_and_the_rest_frozen() -> None:
    garbage = _Cycle()
    gone = weakref.ref(garbage)
    kept = _Cycle()
    del garbage
    eventloop.freeze_startup_objects()
    assert gone() is None
    assert gc.get_freeze_count() > 0
    assert not any(obj is kept for generation in range(3) for obj in gc.get_objects(generation))


def _settings(tmp_path: Path) -> Settings:
    return Settings.load(database_url=f"sqlite:///{tmp_path / 'photohook.db'}", environ={})


def test_serve_freezes_once_the_app_exists_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen_at_run: list[int] = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self: frozen_at_run.append(gc.get_freeze_count())
    )
    server.serve(_settings(tmp_path))
    assert frozen_at_run and frozen_at_run[0] > 0


def test_worker_freezes_once_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def freeze_then_stop() -> None:
        calls.append("freeze")
        os.kill(os.getpid(), signal.SIGTERM)  # the worker's own handler: it stops cleanly

    monkeypatch.setattr(eventloop, "freeze_startup_objects", freeze_then_stop)
    assert service.worker(_settings(tmp_path), argparse.Namespace()) == 0
    assert calls == ["freeze"]
