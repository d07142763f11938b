"""The admin API's contract: one set of structs, from which validation, answers and the OpenAPI
document are derived."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from starlette.routing import Route

from receiver.errors import Invalid, InvalidJSON
from receiver.events import Event, KeptResult
from receiver.sources import KINDS
from receiver.store import DELIVERY_STATES, TASK_STATES, Delivery, RejectedRequest, Task
from receiver.web.admin import answers
from receiver.web.admin.api import AdminAPI
from receiver.web.admin.contract import (
    DeliveryRetry,
    EventList,
    RejectedList,
    ReplayBody,
    TaskList,
    TrackBody,
)
from receiver.web.admin.endpoints import OPERATIONS
from receiver.web.admin.openapi import document
from receiver.web.admin.queries import event_filters, read_body, read_params


def _refused(read: Any, *args: Any) -> tuple[str, str | None]:
    with pytest.raises(Invalid) as refused:
        read(*args)
    return refused.value.message, refused.value.field


@pytest.mark.parametrize(
    ("kind", "values", "message", "field"),
    [
        (EventList, {"limit": "0"}, "limit must be a whole number from 1 to 500", "limit"),
        (EventList, {"limit": "+5"}, "limit must be a whole number from 1 to 500", "limit"),
        (EventList, {"limit": "ten"}, "limit must be a whole number from 1 to 500", "limit"),
        (EventList, {"flagged": "yes"}, "flagged must be true or false", "flagged"),
        (EventList, {"source": "s" * 257}, "source is longer than 256 characters", "source"),
        (EventList, {"color": "red"}, "unknown parameter 'color'", "color"),
        (DeliveryRetry, {"state": "pending"}, "state must be one of dead", "state"),
        (RejectedList, {"retryable": "1"}, "retryable must be true or false", "retryable"),
        (
            TaskList,
            {"state": "gone"},
            f"state must be one of {', '.join(sorted(TASK_STATES))}",
            "state",
        ),
    ],
)
def test_a_bad_query_parameter_is_refused_naming_it(
    kind: Any, values: dict[str, str], message: str, field: str
) -> None:
    assert _refused(read_params, kind, values) == (message, field)


def test_query_parameters_are_read_into_their_types_and_empty_ones_are_absent() -> None:
    params = read_params(EventList, {"limit": "7", "flagged": "true", "source": ""})
    assert (params.limit, params.flagged, params.source) == (7, "true", None)
    assert read_params(TaskList, {}).limit == 100


def test_event_filters_read_text_as_the_api_does() -> None:
    query = event_filters({"status": "completed", "since": "2026-11-22T10:00:00", "limit": "3"})
    assert (query.status, query.limit) == ("completed", 3)
    assert query.since is not None and query.since.utcoffset() is not None
    message, field = _refused(event_filters, {"since": "yesterday"})
    assert field == "since" and message.startswith("since must be an RFC 3339 time")
    statuses = sorted({status for kind in KINDS.values() for status in kind.statuses} | {"expired"})
    assert _refused(event_filters, {"status": "done"}) == (
        f"status must be one of {', '.join(statuses)}",
        "status",
    )


@pytest.mark.parametrize(
    ("kind", "raw", "message", "field"),
    [
        (ReplayBody, b"[1]", "the body must be a JSON object", ""),
        (ReplayBody, b'{"new_id": 1}', "new_id must be true or false", "new_id"),
        (ReplayBody, b'{"destination": 1}', "destination must be a string", "destination"),
        (ReplayBody, b'{"to": "x"}', "unknown field 'to'", "to"),
        (TrackBody, b"{}", "source is required", "source"),
        (TrackBody, b'{"source": ""}', "source is required", "source"),
        (
            TrackBody,
            b'{"source": "f", "task_id": ""}',
            "task_id must be 1 to 256 characters",
            "task_id",
        ),
    ],
)
def test_a_bad_body_is_refused_naming_its_field(
    kind: Any, raw: bytes, message: str, field: str
) -> None:
    assert _refused(read_body, kind, raw) == (message, field)


def test_a_body_is_optional_and_must_be_json() -> None:
    assert read_body(ReplayBody, b"  ") == ReplayBody()
    assert read_body(ReplayBody, b'{"new_id": true}').new_id is True
    with pytest.raises(InvalidJSON):
        read_body(ReplayBody, b"{")


def test_every_operation_is_a_route_of_the_admin_api_and_in_the_document() -> None:
    api = AdminAPI.__new__(AdminAPI)
    routes = {(r.path, m) for r in api.routes() if isinstance(r, Route) for m in r.methods or ()}
    paths = document()["paths"]
    for operation in OPERATIONS:
        assert (operation.path, operation.method) in routes
        described = paths[operation.path.replace(":path", "")][operation.method.lower()]
        assert described["operationId"] == operation.handler
        assert callable(getattr(AdminAPI, operation.handler))


def test_each_path_of_the_document_declares_its_parameters_without_convertors() -> None:
    for path, methods in document()["paths"].items():
        named = re.findall(r"{([^}]*)}", path)
        assert all(name.isidentifier() for name in named), path
        for described in methods.values():
            declared = [p["name"] for p in described.get("parameters", ()) if p["in"] == "path"]
            assert declared == named, path
    batch_id = document()["paths"]["/api/batches/{batch_id}/close"]["post"]["parameters"][0]
    assert "/" in batch_id["description"] and "%2F" in batch_id["description"]


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if "$ref" in value else set()
        return found.union(*(_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value))
    return set()


def test_the_document_resolves_every_reference_and_takes_its_enums_from_the_registries() -> None:
    described = document()
    schemas = described["components"]["schemas"]
    assert {ref.rsplit("/", 1)[1] for ref in _refs(described)} <= set(schemas)
    assert schemas["Event"]["properties"]["kind"]["enum"] == sorted([*KINDS, "batch"])
    assert schemas["Delivery"]["properties"]["state"] == {
        "$ref": "#/components/schemas/DeliveryState"
    }
    assert schemas["DeliveryState"]["enum"] == sorted(DELIVERY_STATES)
    status = next(
        p for p in described["paths"]["/api/events"]["get"]["parameters"] if p["name"] == "status"
    )
    statuses = {s for k in KINDS.values() for s in k.statuses} | {"expired"}
    assert status["schema"]["enum"] == sorted(statuses)
    assert not {"EventList", "TaskList", "Params"} & set(schemas)


def test_the_document_describes_the_webhooks_photohook_sends() -> None:
    delivered = document()["webhooks"]["event"]["post"]
    headers = {p["name"]: p for p in delivered["parameters"] if p["in"] == "header"}
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert not headers["webhook-signature"]["required"]
    schema = delivered["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Event"}


def test_answers_keep_the_json_shapes_of_the_records() -> None:
    delivery = Delivery("dlv_1", "evt_1", "d", "delivered", 1, 1, 5.0, 200, None, 0.0, 1.0)
    shown = answers.delivery(delivery)
    assert shown.next_attempt_at is None  # only a waiting delivery has a next attempt
    assert shown.created_at == "1970-01-01T00:00:00.000000Z"
    task = Task("s", "t", None, "done", "evt_1", 0.0, 1.0, 9.0, 2.0, 3, None)
    assert answers.task(task).next_check_at is None
    record = RejectedRequest(
        "rej_1", "s", "2026-01-01T00:00:00.000000Z", None, None, [], None, 422, "invalid",
        "bad", None, 1, None, "rejected", {"status": 422, "code": "c", "message": "m"}, [],
    )  # fmt: skip
    encoded = answers.encode(answers.rejected(record))
    assert b'"error":{"code":"invalid","message":"bad"}' in encoded  # no field: left out
    assert b'"body_kept":false' in encoded
    assert b'"retry_error":{"status":422,"code":"c","message":"m"}' in encoded
    detail = answers.rejected_detail(record)
    assert (detail.body, detail.headers) == (None, [])


@pytest.mark.parametrize(
    "kept",
    [
        (),
        (
            KeptResult("https://x/a.png", "kept", "https://k/a", 3, "image/png", "ab", None),
            KeptResult("https://x/b.png", "missing", error="GET https://x/b.png answered 404"),
        ),
    ],
)
def test_an_event_has_one_json_shape_delivered_and_answered(kept: tuple[KeptResult, ...]) -> None:
    event = Event(
        "evt_1", "fotor", "fotor", "fotor.task.completed", "t1", "upscale", "completed", "b1",
        (), ("https://x/a.png",), False, datetime(2026, 1, 1, tzinfo=UTC), {"taskId": "t1"},
        kept_results=kept,
    )  # fmt: skip
    delivered = event.to_dict()
    answered = orjson.loads(answers.encode(answers.event(event)))
    # the same keys in the same order: a key one side lacks is dropped or missing in the other
    assert list(answered.items()) == list(delivered.items())


def test_the_ingest_body_is_each_providers_callback_struct() -> None:
    described = document()
    body = described["paths"]["/hooks/{source}"]["post"]["requestBody"]
    refs = body["content"]["application/json"]["schema"]["anyOf"]
    names = [ref["$ref"].rsplit("/", 1)[1] for ref in refs]
    assert names == [body.__name__ for kind in KINDS.values() for body in kind.bodies]
    fotor = described["components"]["schemas"]["FotorCallback"]
    assert fotor["required"] == ["taskId", "status", "type"]
    assert fotor["properties"]["status"]["enum"] == [0, 1, 2]
