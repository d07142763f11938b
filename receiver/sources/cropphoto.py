"""Crop.photo banner-job callbacks.

Two shapes are accepted: a single job object ``{"job_id", "status", "job_labels", "results",
"error_message"}`` and the shape of the status answer ``{"jobs": [...], "results": [...],
"error_message"}``. Each job becomes one event.
"""

from __future__ import annotations

from typing import Any

import httpx

from receiver.errors import InvalidCallback
from receiver.sources._fields import (
    choice,
    optional_objects,
    optional_str,
    optional_strings,
    require_id,
    require_object,
)
from receiver.sources._parsed import ParsedEvent
from receiver.sources._status import StatusAnswer, json_object, request
from receiver.types import JSONObject

API_BASE_URL = "https://us1-api.crop.photo"
STATUSES = ("pending", "processing", "completed", "failed")
STATUS_NAMES = {status: status for status in STATUSES}
TERMINAL_STATUSES = frozenset({"completed", "failed"})
TASK_TYPE = "banner"


def parse(body: Any) -> list[ParsedEvent]:
    """One event per job in a Crop.photo callback body; raises InvalidCallback naming the field."""
    doc = require_object(body, "")
    optional_str(doc, "error_message")
    results = _result_urls(doc)
    if "jobs" not in doc:
        return [_job_event(doc, "", [url for _, url in results])]
    jobs = optional_objects(doc, "jobs")
    if not jobs:
        raise InvalidCallback("jobs must list at least one job", field="jobs")
    events = []
    for path, job in jobs:
        job_id = require_id(job, "job_id", path)
        urls = [url for owner, url in results if _belongs(owner, url, job_id, len(jobs))]
        events.append(_job_event(job, path, urls))
    return events


def _job_event(job: JSONObject, path: str, result_urls: list[str]) -> ParsedEvent:
    task_id = require_id(job, "job_id", path)
    status = choice(job, "status", STATUS_NAMES, path)
    labels = optional_strings(job, "job_labels", path)
    if path:
        result_urls = result_urls + [url for _, url in _result_urls(job, path)]
    return ParsedEvent(
        type=f"cropphoto.job.{status}",
        task_id=task_id,
        task_type=TASK_TYPE,
        status=status,
        business_id=None,
        labels=labels,
        result_urls=tuple(result_urls),
        flagged=False,
    )


def _result_urls(doc: JSONObject, path: str = "") -> list[tuple[str | None, str]]:
    """(job_id the result names, if any; output URL) for each result with a URL."""
    urls = []
    for result_path, result in optional_objects(doc, "results", path):
        url = optional_str(result, "output_image_url", result_path)
        owner = optional_str(result, "job_id", result_path)
        if result.get("crop_coordinates") is not None:
            require_object(result["crop_coordinates"], f"{result_path}.crop_coordinates")
        if url:
            urls.append((owner, url))
    return urls


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
