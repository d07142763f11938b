from __future__ import annotations

from pathlib import Path

import pytest

from receiver.config.importer import import_from_string
from receiver.errors import ImportStringError


def test_resolves_module_attributes() -> None:
    assert import_from_string("handlers.log:print_event").__name__ == "print_event"
    assert import_from_string("receiver.retry:RetrySchedule.next_delay")


@pytest.mark.parametrize(
    ("import_str", "message"),
    [
        ("handlers.log", 'must be in format "module:attribute"'),
        (":print_event", 'must be in format "module:attribute"'),
        ("handlers.nope:print_event", 'could not import module "handlers.nope"'),
        ("handlers.log:nope", 'attribute "nope" not found in module "handlers.log"'),
    ],
)
def test_errors_say_which_part_is_wrong(import_str: str, message: str) -> None:
    with pytest.raises(ImportStringError, match=message):
        import_from_string(import_str)


def test_a_module_that_fails_to_import_is_one_precise_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "needs_pandas.py").write_text("import pandas_not_installed_here\n")
    (tmp_path / "broken_hooks.py").write_text("raise RuntimeError('no config')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportStringError, match=r"No module named 'pandas_not_installed_here'"):
        import_from_string("needs_pandas:record")
    with pytest.raises(ImportStringError, match=r"failed to import: RuntimeError: no config"):
        import_from_string("broken_hooks:record")
    with pytest.raises(ImportStringError, match=r'could not import module "nomodule_x.hooks"'):
        import_from_string("nomodule_x.hooks:record")
