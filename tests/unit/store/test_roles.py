"""The store's contract: each operation declared once, by one small role; both engines serve
every role with the role's signatures; and a fake of one role, a few lines, serves a unit test."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from receiver.retention import prune_old
from receiver.states import BatchState, DeliveryState, DestinationState, KeptState, TaskState
from receiver.store import Pruned, Retention, Store, roles
from receiver.store.postgres import PostgresStore
from receiver.store.sqlite import SQLiteStore

#: Roles made of others, declaring nothing of their own.
COMBINED = (
    roles.Reconciling,
    roles.Working,
    roles.Replaying,
    roles.DestinationReport,
    roles.ReconcilerReport,
    roles.Administering,
    roles.Dashboarding,
)


def declared(cls: type) -> set[str]:
    """The members ``cls`` declares itself (not those of the roles it is made of)."""
    return {
        name
        for name in (*vars(cls), *vars(cls).get("__annotations__", {}))
        if not name.startswith("_")
    }


def members(cls: type) -> set[str]:
    return set().union(*(declared(base) for base in cls.__mro__ if base is not object))


def test_each_operation_is_declared_once_by_one_role() -> None:
    seen: dict[str, type] = {}
    for role in roles.ROLES:
        assert role.__doc__
        for name in declared(role):
            assert name not in seen, f"{name} is declared by {seen[name].__name__} and {role}"
            seen[name] = role
    for combined in COMBINED:
        assert declared(combined) == set()
    assert declared(Store) == {"schema", "open", "close"}
    assert members(Store) == {"schema", "open", "close", *seen}
    assert {role for role in Store.__mro__ if role in roles.ROLES} == set(roles.ROLES)


def test_small_roles() -> None:
    for role in roles.ROLES:
        assert len(members(role)) <= 8, role


def test_only_the_store_and_the_commands_name_the_whole_store() -> None:
    """The commands open the database and hand it on; every other component takes the roles it
    uses."""
    package = Path(roles.__file__).parents[1]
    whole = re.compile(r"\bStore\b")
    naming = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.parent.name not in ("store", "cli") and whole.search(path.read_text())
    }
    assert naming == set()


@pytest.mark.parametrize("engine", [SQLiteStore, PostgresStore])
def test_both_engines_serve_every_role_with_its_signatures(engine: type) -> None:
    for name in members(Store) - {"schema"}:
        contract = inspect.signature(getattr(Store, name))
        served = inspect.signature(getattr(engine, name))
        assert _shape(served) == _shape(contract), f"{engine.__name__}.{name}"
        assert inspect.iscoroutinefunction(getattr(engine, name)) == (
            inspect.iscoroutinefunction(getattr(Store, name))
        ), name


def _shape(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    """Each parameter after ``self``: its name, kind and default."""
    return [(p.name, p.kind, p.default) for p in list(signature.parameters.values())[1:]]


class Pruning:
    """A fake of the :class:`Retention` role: what was asked, and a fixed answer."""

    def __init__(self) -> None:
        self.asked: list[tuple[datetime, bool]] = []

    async def prune(
        self,
        cutoff: datetime,
        *,
        batch: int = 500,
        dry_run: bool = False,
        progress: Callable[[Pruned], None] | None = None,
    ) -> Pruned:
        self.asked.append((cutoff, dry_run))
        return Pruned(events=2)


async def test_a_fake_of_one_role_serves_a_unit_test() -> None:
    fake: Retention = Pruning()
    assert await prune_old(fake, 3600, dry_run=True) == Pruned(events=2)
    assert isinstance(fake, Pruning)
    [(cutoff, dry_run)] = fake.asked
    assert dry_run
    assert abs(cutoff - (datetime.now(UTC) - timedelta(hours=1))) < timedelta(seconds=5)


def test_the_fake_type_checks_as_its_role() -> None:
    api = pytest.importorskip("mypy.api")
    out, err, status = api.run(
        ["--strict", "--no-incremental", "--follow-imports=silent", __file__]
    )
    assert status == 0, out + err


#: A state the SQL compares with: ``state = 'x'``, ``state IN ('x', 'y')``, ``THEN 'x'``.
_STATE_IN_SQL = re.compile(r"state\s*(?:=|!=|<>)\s*'(\w+)'|state\s+IN\s*\(([^)]*)\)|THEN\s+'(\w+)'")


def test_the_sql_names_only_states_there_are() -> None:
    known = {*DeliveryState, *TaskState, *DestinationState, *KeptState, *BatchState}
    found: set[str] = set()
    for module in Path(roles.__file__).parent.glob("*.py"):
        for one, many, then in _STATE_IN_SQL.findall(module.read_text()):
            found.update([one, then, *re.findall(r"'(\w+)'", many)])
    found.discard("")
    assert found - known == set()
    assert len(found) >= 10  # the pattern still finds them
