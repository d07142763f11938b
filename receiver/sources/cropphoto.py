"""Crop.photo banner-job callbacks.

Two shapes are accepted: a single job object ``{"job_id", "status", "job_labels", "results",
"error_message"}`` and the shape of the status answer ``{"jobs": [...], "results": [...],
"error_message"}``. Each job becomes one event.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from msgspec import Meta, Struct

from receiver.errors import InvalidCallback
from receiver.sources._fields import Id, choice, read
from receiver.sources._parsed import ParsedEvent
from receiver.sources._status import StatusAnswer, json_object, request

API_BASE_URL = "https://us1-api.crop.photo"
STATUSES = ("pending", "processing", "completed", "failed")
STATUS_NAMES = {status: status for status in STATUSES}
TERMINAL_STATUSES = frozenset({"completed", "failed"})
TASK_TYPE = "banner"


class CropPhotoResult(Struct):
    output_image_url: str | None = None
    job_id: str | None = None  # the job it is of, in the status answer's shape
    crop_coordinates: dict[str, Any] | None = None


class CropPhotoJob(Struct):
    """One banner job; fields it does not name are kept in the payload, unread."""

    job_id: Id
    status: Annotated[
        str, Meta(extra={"choices": STATUS_NAMES}, extra_json_schema={"enum": list(STATUSES)})
    ]
    job_labels: list[str] | None = None
    results: list[CropPhotoResult] | None = None
    error_message: str | None = None


class CropPhotoJobs(Struct):
    """The status answer's shape: jobs, with results beside them."""

    jobs: list[CropPhotoJob] | None = None
    results: list[CropPhotoResult] | None = None
    error_message: str | None = None


def parse(body: Any) -> list[ParsedEvent]:
    """One event per job in a Crop.photo callback body; raises InvalidCallback naming the field."""
    if not isinstance(body, dict) or "jobs" not in body:
        job = read(CropPhotoJob, body)
        return [_job_event(job, "status", _result_urls(job.results))]
    doc = read(CropPhotoJobs, body)
    if not doc.jobs:
        raise InvalidCallback("jobs must list at least one job", field="jobs")
    results = _owned_result_urls(doc.results)
    return [
        _job_event(
            job,
            f"jobs[{index}].status",
            [url for owner, url in results if _belongs(owner, url, job.job_id, len(doc.jobs))]
            + _result_urls(job.results),
        )
        for index, job in enumerate(doc.jobs)
    ]


def _job_event(job: CropPhotoJob, status_field: str, result_urls: list[str]) -> ParsedEvent:
    status = choice(STATUS_NAMES, job.status, status_field)
    return ParsedEvent(
        type=f"cropphoto.job.{status}",
        task_id=job.job_id,
        task_type=TASK_TYPE,
        status=status,
        business_id=None,
        labels=tuple(job.job_labels or ()),
        result_urls=tuple(result_urls),
        flagged=False,
    )


def _owned_result_urls(results: list[CropPhotoResult] | None) -> list[tuple[str | None, str]]:
    """(job_id the result names, if any; output URL) for each result with a URL."""
    return [(r.job_id, r.output_image_url) for r in results or () if r.output_image_url]


def _result_urls(results: list[CropPhotoResult] | None) -> list[str]:
    return [url for _, url in _owned_result_urls(results)]


def _belongs(owner: str | None, url: str, job_id: str, job_count: int) -> bool:
    # The status answer lists results beside jobs without always naming the job: a result that
    # names its job goes to that job; with one job, every result is its own; otherwise a result
    # goes to the job whose id its output URL contains.
    if owner is not None:
        return owner == job_id
    return job_count == 1 or job_id in url


async def fetch_status(
    client: httpx.AsyncClient, base_url: str, api_key: str, task_id: str
) -> StatusAnswer:
    """Banners Job Status: ``POST /v1/banners/with-mask/status`` with ``{"job_id": ...}``."""
    response = await request(
        client,
        "POST",
        f"{base_url}/v1/banners/with-mask/status",
        json={"job_id": task_id},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    if response.status_code == 404:
        return StatusAnswer(None, response.content)
    answer = json_object(response)
    jobs = answer.get("jobs")
    if not isinstance(jobs, list) or not any(
        isinstance(job, dict) and job.get("job_id") == task_id for job in jobs
    ):
        return StatusAnswer(None, response.content)
    return StatusAnswer(answer, response.content)
