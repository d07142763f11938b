from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from receiver import Event
from receiver.routing import Route, Router


def event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "id": "evt_1",
        "source": "fotor",
        "kind": "fotor",
        "type": "fotor.task.completed",
        "task_id": "t1",
        "task_type": "upscale",
        "status": "completed",
        "business_id": "order-42",
        "labels": (),
        "result_urls": (),
        "flagged": False,
        "received_at": datetime.now(UTC),
        "payload": {},
    }
    fields.update(overrides)
    return Event(**fields)


def test_a_route_without_conditions_matches_everything() -> None:
    assert Route(name="all", to=("a",)).matches(event())


def test_every_condition_must_hold_and_lists_mean_any_of() -> None:
    route = Route(
        name="r",
        to=("a",),
        source=frozenset({"fotor"}),
        status=frozenset({"completed", "failed"}),
        task_type=frozenset({"upscale", "avatar"}),
        business_id=("order-*",),
        flagged=False,
    )
    assert route.matches(event())
    assert route.matches(event(status="failed", task_type="avatar"))
    assert not route.matches(event(status="in_progress"))
    assert not route.matches(event(source="cropphoto"))
    assert not route.matches(event(task_type="videoEnhancer"))
    assert not route.matches(event(business_id="invoice-1"))
    assert not route.matches(event(business_id=None))
    assert not route.matches(event(flagged=True))


def test_label_globs_match_any_label() -> None:
    route = Route(name="r", to=("a",), labels=("car-*", "honda-lot-?"))
    assert route.matches(event(labels=("x", "car-model-lot-1")))
    assert route.matches(event(labels=("honda-lot-x",)))
    assert not route.matches(event(labels=("truck-1", "honda-lot-xy")))
    assert not route.matches(event(labels=()))


def test_an_event_matching_several_routes_goes_once_to_each_destination() -> None:
    router = Router(
        [
            Route(name="one", to=("app", "archive")),
            Route(name="two", to=("archive", "log"), status=frozenset({"completed"})),
            Route(name="three", to=("never",), source=frozenset({"cropphoto"})),
        ]
    )
    assert router.destinations(event()) == ("app", "archive", "log")
    assert router.destinations(event(status="failed")) == ("app", "archive")
