"""Declaring batches in the configuration: a source's ``batch_*`` keys, the reserved source name,
and routes matching batch events by ``type``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from receiver.config.settings import Settings
from receiver.errors import ConfigError
from receiver.events import Event
from receiver.routing import Router

LOG = "[destinations.a]\nhandler = 'handlers.log:print_event'\n"


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return Settings.load(config_file=path, environ={})


def event(**given: object) -> Event:
    fields: dict[str, object] = {
        "id": "evt_1",
        "source": "fotor",
        "kind": "fotor",
        "type": "fotor.task.completed",
        "task_id": "t1",
        "task_type": "upscale",
        "status": "completed",
        "business_id": None,
        "labels": (),
        "result_urls": (),
        "flagged": False,
        "received_at": datetime.now(UTC),
        "payload": {},
    }
    return Event(**(fields | given))  # type: ignore[arg-type]


def test_a_source_rule_names_batches_by_business_id_or_labels(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[sources.fotor]\nbatch_key = "^(order-\\\\d+)-"\nbatch_expected = 50\n'
        'batch_deadline = "2h"\n'
        "[sources.cropphoto]\nbatch_labels = true\n"
        '[sources.whole]\nkind = "fotor"\nbatch_key = "^shoot-[a-z]+"\n',
    )
    fotor = settings.sources["fotor"].batching
    assert fotor is not None and (fotor.expected, fotor.deadline) == (50, 7200)
    assert fotor.batch_ids(event(business_id="order-12-front")) == ("order-12",)
    assert fotor.batch_ids(event(business_id="other-12")) == ()
    assert fotor.batch_ids(event()) == ()
    crop = settings.sources["cropphoto"].batching
    assert crop is not None and crop.batch_ids(event(labels=("a", "b", "a"))) == ("a", "b")
    whole = settings.sources["whole"].batching
    assert whole is not None and whole.batch_ids(event(business_id="shoot-abc-1")) == ("shoot-abc",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[sources.fotor]\nbatch_key = "order-(\\\\d+"\n', "sources.fotor.batch_key: not a valid"),
        ("[sources.fotor]\nbatch_expected = 5\n", "batch_expected: needs batch_key"),
        ('[sources.fotor]\nbatch_labels = true\nbatch_deadline = "-1s"\n', "batch_deadline"),
        ('[sources.batches]\nkind = "fotor"\n', "sources.batches: the name is reserved"),
    ],
)
def test_bad_batch_keys_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


def test_routes_match_batch_events_by_type_source_and_status(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        LOG
        + '[[routes]]\nname = "batches"\ntype = ["batch.*"]\nto = ["a"]\n'
        + '[[routes]]\nname = "expired"\nsource = "batches"\nstatus = "expired"\nto = ["a"]\n'
        + '[[routes]]\nname = "all"\nto = ["a"]\n',
    )
    by_type, by_status, every = settings.routes
    completed = event(source="batches", kind="batch", type="batch.completed", status="completed")
    expired = event(source="batches", kind="batch", type="batch.expired", status="expired")
    assert by_type.matches(completed) and by_type.matches(expired)
    assert not by_type.matches(event())
    assert by_status.matches(expired) and not by_status.matches(completed)
    assert every.matches(completed)
    assert by_type.conditions() == "type in [batch.*]"
    assert Router(settings.routes).destinations(completed) == ("a",)
