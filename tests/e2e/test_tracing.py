"""Traces end to end: ``photohook serve --no-worker`` and ``photohook worker`` as processes,
exporting over OTLP/HTTP (the SDK's exporter, configured by the standard variables) to an
endpoint on loopback that decodes what it receives; the attempt's span, in the worker, joins
the callback's trace, begun in the web process. On SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.helpers import fixture
from tests.integration.servers import Sink, running

from .process import Serve, Worker, run_cli


@dataclass
class Exported:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class Collector:
    """``POST /v1/traces`` as an OpenTelemetry collector takes it, in protobuf."""

    def __init__(self) -> None:
        self.spans: list[Exported] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])

    async def _traces(self, request: Request) -> Response:
        sent = ExportTraceServiceRequest.FromString(await request.body())
        with self._lock:
            for resource in sent.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        self.spans.append(
                            Exported(
                                attributes.get("service.name", ""),
                                span.name,
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex(),
                                {a.key: _value(a.value) for a in span.attributes},
                            )
                        )
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )

    def named(self, name: str) -> list[Exported]:
        with self._lock:
            return [s for s in self.spans if s.name == name]


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "int_value", "bool_value") else kind


def wait_until(check: Any, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not true in time"
        time.sleep(0.05)


def test_the_worker_process_continues_the_web_process_trace(
    tmp_path: Path, database_url: str
) -> None:
    collector = Collector()
    sink = Sink()
    with (
        running(collector.app, lifespan="off") as endpoint,
        running(sink.app, lifespan="off") as sink_url,
    ):
        (tmp_path / "photohook.toml").write_text(
            "[server]\nallow_private_destinations = true\n"
            f'[destinations.sink]\nurl = "{sink_url}/hook"\n[[routes]]\nto = ["sink"]\n'
        )
        env = {
            "PHOTOHOOK_DATABASE_URL": database_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "photohook-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        serve = Serve(tmp_path, "--no-worker", env=env)
        worker = Worker(tmp_path, env=env)
        serve.start()
        worker.start()
        try:
            url = run_cli(
                "url", "fotor", "--base-url", serve.base_url, cwd=tmp_path, env=env
            ).stdout.strip()
            body = fixture("fotor/upscale-completed")
            answer = httpx.post(url, json=body)
            assert answer.status_code == 200, answer.text
            [event_id] = answer.json()["event_ids"]
            wait_until(lambda: len(sink.received) == 1)
            wait_until(lambda: collector.named("photohook.delivery") != [])
            wait_until(lambda: collector.named("store") != [])
        finally:
            worker.stop()
            serve.stop()
    [callback] = collector.named("photohook.callback")
    [attempt] = collector.named("photohook.delivery")
    assert callback.service == attempt.service == "photohook-under-test"
    assert attempt.trace_id == callback.trace_id
    assert attempt.parent_id == callback.span_id
    assert attempt.attributes["photohook.event.id"] == event_id
    assert attempt.attributes["photohook.outcome"] == "ok"
    assert attempt.attributes["http.response.status_code"] == 200
    for child in ("authenticate", "parse", "store"):
        [span] = collector.named(child)
        assert (span.trace_id, span.parent_id) == (callback.trace_id, callback.span_id)
    # The sink got the attempt's traceparent.
    _, trace_id, span_id, _ = sink.received[0].headers["traceparent"].split("-")
    assert (trace_id, span_id) == (attempt.trace_id, attempt.span_id)
