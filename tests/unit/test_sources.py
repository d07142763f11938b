from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from receiver.errors import InvalidCallback
from receiver.sources import KINDS, cropphoto, fotor
from tests.helpers import fixture


def test_fotor_completed() -> None:
    [event] = fotor.parse(fixture("fotor/upscale-completed"))
    assert event.type == "fotor.task.completed"
    assert event.task_id == "6cf0082eba5044f1a9495e0eaf5e35ca"
    assert event.task_type == "upscale"
    assert event.status == "completed"
    assert event.business_id == "order-20261121-0042"
    assert event.result_urls == (
        "https://cdn.example.com/results/6cf0082eba5044f1a9495e0eaf5e35ca.png",
    )
    assert event.flagged is False


def test_fotor_in_progress_has_no_results() -> None:
    [event] = fotor.parse(fixture("fotor/upscale-in-progress"))
    assert (event.type, event.status, event.result_urls) == (
        "fotor.task.in_progress",
        "in_progress",
        (),
    )


def test_fotor_failed_without_business_id() -> None:
    [event] = fotor.parse(fixture("fotor/bg-remove-failed"))
    assert event.status == "failed"
    assert event.business_id is None
    assert event.result_urls == ()  # empty resultUrl is left out


def test_fotor_avatar_collects_images_and_flags_sensitive_content() -> None:
    [event] = fotor.parse(fixture("fotor/avatar-completed"))
    assert event.result_urls == (
        "https://cdn.example.com/avatar/a1f3c2e4b5d6.jpg",
        "https://cdn.example.com/avatar/b2e4d3f5c6a7.jpg",
    )
    assert event.flagged is True


def test_fotor_keeps_unknown_fields_without_complaint() -> None:
    body = fixture("fotor/upscale-completed") | {"newField": {"nested": [1, 2]}}
    assert fotor.parse(body)[0].task_id == body["taskId"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"taskId": None}, "taskId"),
        ({"taskId": ""}, "taskId"),
        ({"taskId": 42}, "taskId"),
        ({"taskId": "x" * 257}, "taskId"),
        ({"status": None}, "status"),
        ({"status": 3}, "status"),
        ({"status": "1"}, "status"),
        ({"status": True}, "status"),
        ({"status": 1.0}, "status"),
        ({"type": None}, "type"),
        ({"type": []}, "type"),
        ({"businessId": 7}, "businessId"),
        ({"resultUrl": {"url": "x"}}, "resultUrl"),
        ({"avatarResult": {}}, "avatarResult"),
        ({"avatarResult": [1]}, "avatarResult[0]"),
        ({"avatarResult": [{"images": "x"}]}, "avatarResult[0].images"),
        ({"avatarResult": [{"images": [{"url": 1}]}]}, "avatarResult[0].images[0].url"),
        ({"avatarResult": [{"images": [{"hasHsfw": "yes"}]}]}, "avatarResult[0].images[0].hasHsfw"),
    ],
)
def test_fotor_schema_violations_name_the_field(change: dict[str, Any], field: str) -> None:
    body = fixture("fotor/upscale-completed")
    for key, value in change.items():
        if value is None:
            del body[key]
        else:
            body[key] = value
    with pytest.raises(InvalidCallback) as caught:
        fotor.parse(body)
    assert caught.value.field == field
    assert field in caught.value.message


@pytest.mark.parametrize("body", [[], "text", 1, None])
def test_body_must_be_an_object(body: Any) -> None:
    for kind in KINDS.values():
        with pytest.raises(InvalidCallback, match="must be a JSON object"):
            kind.parse(body)


def test_cropphoto_single_job() -> None:
    [event] = cropphoto.parse(fixture("cropphoto/banner-job-completed"))
    assert event.type == "cropphoto.job.completed"
    assert event.task_id == "bj_7d2f0c1e9a"
    assert event.task_type == "banner"
    assert event.labels == ("car-model-lot-1", "honda-lot-x")
    assert event.result_urls == ("https://cdn.example.com/banners/bj_7d2f0c1e9a-1200x628.jpg",)


def test_cropphoto_failed_job() -> None:
    [event] = cropphoto.parse(fixture("cropphoto/banner-job-failed"))
    assert (event.status, event.result_urls, event.labels) == ("failed", (), ("car-model-lot-2",))


def test_cropphoto_status_shape() -> None:
    [event] = cropphoto.parse(fixture("cropphoto/banner-status-shape"))
    assert event.task_id == "bj_31c9aa04f2"
    assert event.status == "completed"
    assert event.result_urls == ("https://cdn.example.com/banners/bj_31c9aa04f2-1080x1080.jpg",)


def test_cropphoto_status_shape_gives_one_event_per_job_and_attributes_results() -> None:
    body = {
        "jobs": [
            {"job_id": "bj_a", "status": "completed", "job_labels": ["x"]},
            {"job_id": "bj_b", "status": "processing"},
            {"job_id": "bj_c", "status": "completed"},
        ],
        "results": [
            {"output_image_url": "https://cdn.example.com/bj_a-1.jpg"},
            {"output_image_url": "https://cdn.example.com/other.jpg", "job_id": "bj_c"},
            {"output_image_url": ""},
        ],
        "error_message": "",
    }
    events = cropphoto.parse(body)
    assert [(e.task_id, e.status, e.result_urls) for e in events] == [
        ("bj_a", "completed", ("https://cdn.example.com/bj_a-1.jpg",)),
        ("bj_b", "processing", ()),
        ("bj_c", "completed", ("https://cdn.example.com/other.jpg",)),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "completed"}, "job_id"),
        ({"job_id": "bj_1"}, "status"),
        ({"job_id": "bj_1", "status": "done"}, "status"),
        ({"job_id": "bj_1", "status": "completed", "job_labels": "x"}, "job_labels"),
        ({"job_id": "bj_1", "status": "completed", "job_labels": [1]}, "job_labels[0]"),
        ({"job_id": "bj_1", "status": "completed", "results": [[]]}, "results[0]"),
        (
            {"job_id": "bj_1", "status": "completed", "results": [{"output_image_url": 5}]},
            "results[0].output_image_url",
        ),
        (
            {"job_id": "bj_1", "status": "completed", "results": [{"crop_coordinates": 1}]},
            "results[0].crop_coordinates",
        ),
        ({"job_id": "bj_1", "status": "failed", "error_message": 3}, "error_message"),
        ({"jobs": []}, "jobs"),
        ({"jobs": {}}, "jobs"),
        ({"jobs": [{"status": "completed"}]}, "jobs[0].job_id"),
        ({"jobs": [{"job_id": "bj_1", "status": "x"}]}, "jobs[0].status"),
    ],
)
def test_cropphoto_schema_violations_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCallback) as caught:
        cropphoto.parse(body)
    assert caught.value.field == field


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
fotor_like = st.fixed_dictionaries(
    {},
    optional={
        "taskId": json_values | st.text(min_size=1),
        "status": json_values | st.sampled_from([0, 1, 2]),
        "type": json_values | st.text(min_size=1),
        "businessId": json_values,
        "resultUrl": json_values,
        "avatarResult": json_values
        | st.lists(st.fixed_dictionaries({}, optional={"images": json_values})),
    },
)
crop_like = st.fixed_dictionaries(
    {},
    optional={
        "job_id": json_values | st.text(min_size=1),
        "status": json_values | st.sampled_from(cropphoto.STATUSES),
        "job_labels": json_values,
        "results": json_values,
        "jobs": json_values | st.lists(json_values, min_size=1),
        "error_message": json_values,
    },
)


@given(body=json_values | fotor_like | crop_like)
def test_validators_raise_nothing_but_validation_errors(body: Any) -> None:
    for kind in KINDS.values():
        try:
            events = kind.parse(body)
        except InvalidCallback as exc:
            assert exc.field is not None
        else:
            assert events
            for event in events:
                assert event.status in kind.statuses
                assert all(isinstance(url, str) and url for url in event.result_urls)
