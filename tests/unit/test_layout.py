"""The tests mirror the package (docs/testing.md, "Where tests live"): in each tier that does, a
test module is named after the module or subpackage of ``receiver/`` it tests, or after one of a
few topics that cut across modules; and every folder of tests is a package, so that two tiers'
``test_worker.py`` do not collide."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
PACKAGE = ROOT / "receiver"

# golden/ and reliability/ are suites named by what they check, across the package.
MIRRORING = ("unit", "asgi", "store", "integration", "e2e")

TOPICS = {
    "bench",  # python -m bench still runs
    "concurrency",  # several processes on one database
    "docs",  # the guides' links
    "embedding",  # photohook mounted in a host application
    "fences",  # the dependencies' internals we rely on
    "handler_modules",  # handler modules as a team lays them out
    "layers",  # the package's import layers
    "layout",  # this file
    "new_user",  # the README, followed from an empty folder
    "public_api",  # receiver.__all__
    "query_growth",  # how every query grows with the database
    "registering",  # the README's registering steps
}


def _tested(name: str, folder: Path) -> bool:
    """Whether ``receiver/<folder>`` holds a module or subpackage ``name`` (or ``_name``), at any
    depth when ``folder`` is the tier itself."""
    names = (f"{name}.py", f"_{name}.py", name)
    if folder == Path():
        return any(path.name in names for path in PACKAGE.rglob("*") if path.name != "__pycache__")
    return any((PACKAGE / folder / candidate).exists() for candidate in names)


def test_every_test_module_names_a_module_of_the_package_or_a_topic() -> None:
    strays = []
    for tier in MIRRORING:
        for path in sorted((TESTS / tier).rglob("test_*.py")):
            name = path.stem.removeprefix("test_")
            folder = path.parent.relative_to(TESTS / tier)
            if not _tested(name, folder) and not (folder == Path() and name in TOPICS):
                strays.append(str(path.relative_to(TESTS)))
    assert strays == []


def test_every_folder_of_tests_is_a_package() -> None:
    folders = {path.parent for path in TESTS.rglob("test_*.py")}
    assert (
        sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()) == []
    )


def test_the_check_finds_a_stray() -> None:
    assert _tested("worker", Path())
    assert _tested("worker", Path("delivery"))
    assert _tested("tallies", Path("observability"))
    assert not _tested("worker", Path("web"))
    assert not _tested("worker_edges", Path())
