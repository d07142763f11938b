from __future__ import annotations

import pytest

from receiver.errors import ImportStringError
from receiver.importer import import_from_string


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
