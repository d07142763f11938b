"""OpenTelemetry spans, read with the SDK's in-memory exporter: a callback's span and its
children, a delivery attempt's span in the same trace, and the ``traceparent`` a destination
receives. No token, secret or body in any attribute."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from receiver.delivery.brokers import event_headers
from receiver.delivery.message import compose
from receiver.observability import tracing
from tests.helpers import fixture

from .conftest import SECRET, Photohook
from .servers import Sink, eventually

COMPLETED = fixture("fotor/upscale-completed")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def test_a_callback_and_its_delivery_are_one_trace(
    photohook: Callable[..., Any],
    sink_url: Callable[[Sink], str],
    spans: InMemorySpanExporter,
) -> None:
    sink = Sink(SECRET)
    app: Photohook = await photohook(
        f'[destinations.app]\nurl = "{sink_url(sink)}/hook"\nsecret = "{SECRET}"\n'
        '[[routes]]\nto = ["app"]\n'
    )
    [event_id] = await app.send(COMPLETED)
    await eventually(lambda: app.all_in("delivered", 1))
    await eventually(lambda: len(named(spans, "photohook.delivery")) == 1)

    [callback] = named(spans, "photohook.callback")
    assert callback.context is not None
    for child in ("authenticate", "parse", "store"):
        [span] = named(spans, child)
        assert span.parent is not None and span.parent.span_id == callback.context.span_id
    assert callback.attributes is not None
    assert callback.attributes["photohook.source"] == "fotor"
    assert list(callback.attributes["photohook.event.ids"]) == [event_id]  # type: ignore[arg-type]
    assert callback.attributes["photohook.task.id"] == COMPLETED["taskId"]

    [attempt] = named(spans, "photohook.delivery")
    assert attempt.context is not None and attempt.parent is not None
    assert attempt.context.trace_id == callback.context.trace_id
    assert attempt.parent.span_id == callback.context.span_id
    assert attempt.attributes == {
        "photohook.source": "fotor",
        "photohook.event.id": event_id,
        "photohook.event.type": "fotor.task.completed",
        "photohook.task.id": COMPLETED["taskId"],
        "photohook.destination": "app",
        "photohook.attempt": 1,
        "photohook.outcome": "ok",
        "http.response.status_code": 200,
    }
    # The destination continues the trace from the attempt's span.
    [received] = sink.received
    _, trace_id, span_id, _ = received.headers["traceparent"].split("-")
    assert (int(trace_id, 16), int(span_id, 16)) == (
        attempt.context.trace_id,
        attempt.context.span_id,
    )
    assert received.verified

    everything = repr([dict(s.attributes or {}) for s in spans.get_finished_spans()])
    assert app.hook.rsplit("/", 1)[1] not in everything  # the URL token
    assert SECRET not in everything
    assert str(COMPLETED["resultUrl"]) not in everything  # nothing of the body


async def test_a_refused_callback_is_a_span_with_an_error(
    photohook: Callable[..., Any], spans: InMemorySpanExporter
) -> None:
    app: Photohook = await photohook("")
    async with httpx.AsyncClient() as client:
        response = await client.post(app.hook, json=COMPLETED | {"status": 42})
    assert response.status_code == 422
    [callback] = named(spans, "photohook.callback")
    assert not callback.status.is_ok
    assert named(spans, "store") == []


def test_broker_messages_carry_the_traceparent_only_when_traced(
    spans: InMemorySpanExporter,
) -> None:
    from tests.unit.delivery.test_brokers import event

    message = compose(event(), "evt_1", [])
    assert message is not None
    with tracing.span("photohook.delivery") as span:
        assert span is not None
        traced = event_headers(message, event())
    assert traced["traceparent"].split("-")[1] == f"{span.get_span_context().trace_id:032x}"
    tracing.use(None)
    assert "traceparent" not in event_headers(message, event())


def test_off_without_the_variables() -> None:
    assert tracing.configure({}) is False
    assert tracing.callback("fotor") is None
    with tracing.span("anything") as span:
        assert span is None
