"""``photohook send-test``: realistic provider callbacks, to try routes end to end."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from receiver import eventloop
from receiver.cli.progress import Progress
from receiver.delivery.senders import tls_context

FOTOR_STATUS = {"in_progress": 0, "completed": 1, "failed": 2}
CROPPHOTO_STATUS = {"in_progress": "processing", "completed": "completed", "failed": "failed"}


def fotor_body(status: str, task_type: str, index: int) -> dict[str, Any]:
    """A callback shaped like Fotor's documented ones, with a unique task id."""
    task_id = secrets.token_hex(16)
    body: dict[str, Any] = {
        "taskId": task_id,
        "status": FOTOR_STATUS[status],
        "businessId": f"order-{datetime.now(UTC):%Y%m%d}-{index:04d}",
        "type": task_type,
    }
    if status == "completed":
        if task_type == "avatar":
            body["resultUrl"] = ""
            body["avatarResult"] = [
                {
                    "templateId": secrets.token_hex(8),
                    "images": [
                        {
                            "id": image_id,
                            "url": f"https://cdn.example.com/avatar/{image_id}.jpg",
                            "hasHsfw": False,
                        }
                        for image_id in (secrets.token_hex(6), secrets.token_hex(6))
                    ],
                }
            ]
        else:
            body["resultUrl"] = f"https://cdn.example.com/results/{task_id}.png"
    return body


def cropphoto_body(status: str, index: int) -> dict[str, Any]:
    """A banner-job callback; every other one in the shape of the status answer."""
    job_id = f"bj_{secrets.token_hex(5)}"
    job_status = CROPPHOTO_STATUS[status]
    labels = [f"sim-lot-{index % 10}"]
    results = []
    if job_status == "completed":
        results = [
            {
                "output_image_url": f"https://cdn.example.com/banners/{job_id}-1200x628.jpg",
                "crop_coordinates": {"x": 0.1, "y": 0.2, "width": 0.4, "height": 0.4},
            }
        ]
    error = "mask_image has no transparent pixels" if job_status == "failed" else ""
    if index % 2:
        return {
            "jobs": [{"job_id": job_id, "status": job_status, "job_labels": labels}],
            "results": results,
            "error_message": error,
        }
    return {
        "job_id": job_id,
        "status": job_status,
        "job_labels": labels,
        "results": results,
        "error_message": error,
    }


@dataclass
class Summary:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.accepted + self.duplicates == self.sent

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def report(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        lines = [
            f"sent {self.sent}, accepted {self.accepted}, duplicates {self.duplicates}",
            f"{rate:.0f} req/s; latency p50 {self.percentile(0.5) * 1000:.1f} ms, "
            f"p99 {self.percentile(0.99) * 1000:.1f} ms",
        ]
        if self.rejected:
            by_status = ", ".join(f"{status}: {n}" for status, n in sorted(self.rejected.items()))
            lines.append(f"rejected by status: {by_status}")
        if self.errors:
            lines.append(f"errors: {', '.join(f'{k}: {n}' for k, n in self.errors.items())}")
        return "\n".join(lines)


async def send_test(
    *,
    kind: str,
    url: str,
    status: str,
    task_type: str,
    count: int,
    concurrency: int,
    secret: str | None,
    progress: Progress | None = None,
) -> Summary:
    """Send ``count`` callbacks, ``concurrency`` at a time, and summarize what came back."""
    summary = Summary()
    headers = {"X-WEBHOOK-SECRET": secret} if secret else {}
    queue = iter(range(count))

    async def sender(client: httpx.AsyncClient) -> None:
        for index in queue:
            body = (
                fotor_body(status, task_type, index)
                if kind == "fotor"
                else cropphoto_body(status, index)
            )
            sent = time.perf_counter()
            try:
                response = await client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                summary.errors[type(exc).__name__] += 1
            else:
                summary.latencies.append(time.perf_counter() - sent)
                if response.status_code == 200:
                    if response.json().get("duplicate"):
                        summary.duplicates += 1
                    else:
                        summary.accepted += 1
                else:
                    summary.rejected[response.status_code] += 1
            summary.sent += 1
            if progress is not None:
                progress.advance()

    # A client, so a connection, per sender: httpx's shared pool looks at every connection on
    # every request, and slows down as concurrency grows. They share the deliveries' one TLS
    # context, which httpx would otherwise build for each client (25 ms apiece).
    tls = tls_context()
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    verify=tls, limits=httpx.Limits(max_connections=1), timeout=30, trust_env=False
                )
            )
            for _ in range(concurrency)
        ]
        started = time.perf_counter()
        await asyncio.gather(*(sender(client) for client in clients))
    summary.seconds = time.perf_counter() - started
    return summary


def run(**options: Any) -> Summary:
    """:func:`send_test`, with its progress on stderr while that is a terminal."""
    with Progress("sending", options["count"], unit="callbacks") as progress:
        return eventloop.run(send_test(progress=progress, **options))
