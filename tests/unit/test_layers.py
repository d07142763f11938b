"""The package's layers: each module imports only from its own layer and those below it, and
nothing imports another folder's ``_private`` modules (docs/development.md, "Where the code is")."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "receiver"

#: Top to bottom; a module's layer is that of the longest name here its own starts with.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("receiver", "receiver.__main__", "receiver.handlers"),  # the public API
    ("receiver.cli",),
    ("receiver.web",),
    (
        "receiver.delivery",
        "receiver.keeping",
        "receiver.reconciler",
        "receiver.operations",
        "receiver.retention",
        "receiver.background",
        "receiver.batch_sweeper",
        "receiver.normalize",
    ),
    ("receiver.store", "receiver.sources", "receiver.observability", "receiver.config"),
    (  # the core: types and small pure helpers
        "receiver.__about__",
        "receiver.events",
        "receiver.routing",
        "receiver.destinations",
        "receiver.context",
        "receiver.ids",
        "receiver.errors",
        "receiver.types",
        "receiver.states",
        "receiver.retry",
        "receiver.signing",
        "receiver.ssrf",
        "receiver.secrets",
        "receiver.tokens",
        "receiver.clientaddr",
        "receiver.redact",
        "receiver.eventloop",
        "receiver.states",
    ),
)

#: Imports that break the rule today, each with where it should go; fixing one fails the test
#: until it is taken off this list.
KNOWN: dict[tuple[str, str], str] = {}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


MODULES = dict(_modules())


def _layer(module: str) -> int:
    best, found = -1, None
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(f"{name}.")) and len(name) > best:
                best, found = len(name), index
    if found is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return found


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imports(module: str, path: Path) -> Iterator[str]:
    """The modules of this package that ``module`` imports, wherever in the file (inside
    functions and ``TYPE_CHECKING`` too): a name imported from a package is its submodule when
    there is one, else the package itself."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("receiver"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if _is_package(module) else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            if base != "receiver" and not base.startswith("receiver."):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in MODULES else base


def _found() -> dict[tuple[str, str], str]:
    broken: dict[tuple[str, str], str] = {}
    for module, path in MODULES.items():
        for imported in _imports(module, path):
            if imported not in MODULES:
                raise AssertionError(f"{module} imports {imported}, which is not a module")
            if _layer(imported) < _layer(module):
                broken[(module, imported)] = "upward"
            elif _private_elsewhere(module, imported):
                broken[(module, imported)] = "private"
    return broken


def _private_elsewhere(module: str, imported: str) -> bool:
    """Whether ``imported`` is a ``_private`` module of a folder ``module`` is not in."""
    parts = imported.split(".")
    for index, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            folder = ".".join(parts[:index])
            return module != folder and not module.startswith(f"{folder}.")
    return False


def test_every_module_is_in_a_layer_and_every_name_there_is_a_module() -> None:
    for module in MODULES:
        _layer(module)
    assert [name for names in LAYERS for name in names if name not in MODULES] == []


def test_no_module_imports_from_a_higher_layer_or_another_folders_private_module() -> None:
    broken = _found()
    unexpected = {pair: why for pair, why in broken.items() if KNOWN.get(pair) != why}
    assert unexpected == {}, "\n".join(
        f"{module} imports {imported} ({'a higher layer' if why == 'upward' else 'private'})"
        for (module, imported), why in sorted(unexpected.items())
    )
    fixed = set(KNOWN) - set(broken)
    assert fixed == set(), f"no longer broken, take them off KNOWN: {sorted(fixed)}"


@pytest.mark.parametrize(
    ("module", "imported", "why"),
    [
        ("receiver.events", "receiver.store", "upward"),
        ("receiver.config.settings", "receiver.delivery.worker", "upward"),
        ("receiver.web.ingest", "receiver.delivery._private", "private"),
        ("receiver.web.admin.api", "receiver.web.admin._answers", None),
        ("receiver.sources", "receiver.sources._parsed", None),
        ("receiver.delivery.worker", "receiver.store", None),
        ("receiver.config.settings", "receiver.sources", None),
    ],
)
def test_the_rules_themselves(module: str, imported: str, why: str | None) -> None:
    upward = _layer(imported) < _layer(module)
    private = _private_elsewhere(module, imported)
    assert ("upward" if upward else "private" if private else None) == why
