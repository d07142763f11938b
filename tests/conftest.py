from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.register_profile("long", parent=settings.get_profile("default"), max_examples=2000)
settings.load_profile("long" if os.environ.get("PHOTOHOOK_LONG") else "default")

LONG = bool(os.environ.get("PHOTOHOOK_LONG"))
#: A test's time limit with PHOTOHOOK_LONG, where property tests run 2,000 examples each and soak
#: and crash sizes grow (pyproject.toml's 120 s is the default run's).
LONG_TIMEOUT = 1800


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if LONG:
        for item in items:
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(LONG_TIMEOUT))


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test runs in its own empty directory, without the developer's photohook variables."""
    for name in list(os.environ):
        kept = name == "PHOTOHOOK_LONG" or name.startswith("PHOTOHOOK_TEST_")
        if (name.startswith("PHOTOHOOK_") and not kept) or name == "PORT":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database URL with an empty schema of the test's own."""
    from .postgres import isolated_schema

    with isolated_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL of each engine, for the tests that must hold on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'photohook.db'}"
        return
    from .postgres import isolated_schema

    with isolated_schema() as url:
        yield url
