"""OpenTelemetry traces: a span per callback (authenticating, parsing, the durable write) and a
span per delivery attempt, in the callback's trace across processes.

Off unless the ``otel`` extra is installed and the standard variables ask for traces
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or
``OTEL_TRACES_EXPORTER``); then the SDK reads the rest (``OTEL_SERVICE_NAME``,
``OTEL_TRACES_SAMPLER``...). Off, every helper here returns at once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


def configure(environ: Mapping[str, str] = os.environ) -> bool:
    """Turn traces on when the environment asks for them and the SDK is installed; whether on."""
    exporter = environ.get("OTEL_TRACES_EXPORTER", "")
    asked = exporter not in ("", "none") or any(
        environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    if not asked or _tracer is not None:
        return _tracer is not None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return False
    service = environ.get("OTEL_SERVICE_NAME", "photohook")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    use(provider)
    return True


def use(provider: TracerProvider | None) -> None:
    """Trace with ``provider`` (a test's, or an embedding application's); None turns traces off."""
    global _tracer, _provider
    _provider = provider
    _tracer = None if provider is None else provider.get_tracer("photohook")


def flush() -> None:
    """Send what is buffered, at a process's end."""
    if _provider is not None:
        with contextlib.suppress(Exception):
            _provider.force_flush()


class CallbackTrace:
    """The span of one callback, and its steps (authenticate, parse, store) recorded as child
    spans from their times: off, none of this exists, and ingest pays one ``is None``."""

    def __init__(self, tracer: Tracer, source: str) -> None:
        from opentelemetry import trace as api

        self._api = api
        self._tracer = tracer
        self.span = tracer.start_span("photohook.callback", attributes={"photohook.source": source})
        self._steps: list[tuple[str, int, int]] = []
        self._mark = time.time_ns()
        self.traceparent = _traceparent(api.set_span_in_context(self.span))

    def step(self, name: str) -> None:
        """The step ``name`` ran from the last mark (or the start) until now."""
        now = time.time_ns()
        self._steps.append((name, self._mark, now))
        self._mark = now

    def mark(self) -> None:
        self._mark = time.time_ns()

    def __enter__(self) -> CallbackTrace:
        return self

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        context = self._api.set_span_in_context(self.span)
        for name, start, end in self._steps:
            self._tracer.start_span(name, context=context, start_time=start).end(end_time=end)
        if error is not None:
            self.span.record_exception(error)
            self.span.set_status(self._api.Status(self._api.StatusCode.ERROR, type(error).__name__))
        self.span.end()


def enabled() -> bool:
    return _tracer is not None


def callback(source: str) -> CallbackTrace | None:
    """The trace of a callback arriving on ``source``, or None when traces are off."""
    return None if _tracer is None else CallbackTrace(_tracer, source)


def span(
    name: str, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[Span | None]:
    """A span under the current one, or nothing when traces are off."""
    if _tracer is None:
        return _NOTHING
    return _tracer.start_as_current_span(name, attributes=_clean(attributes))


@contextlib.contextmanager
def continued(
    name: str, traceparent: str | None, attributes: Mapping[str, Any] | None = None
) -> Iterator[Span | None]:
    """A span in the trace whose W3C ``traceparent`` is given (a stored callback's), or a new
    trace without one; nothing when traces are off."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = (
        TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        if traceparent
        else None
    )
    with _tracer.start_as_current_span(name, context=parent, attributes=_clean(attributes)) as s:
        yield s


def inject(headers: MutableMapping[str, str]) -> None:
    """Put the current span's ``traceparent`` (and ``tracestate``) into ``headers``."""
    if _tracer is None:
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    TraceContextTextMapPropagator().inject(headers)


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not attributes:
        return None
    return {key: value for key, value in attributes.items() if value is not None}


def _traceparent(context: Any) -> str | None:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=context)
    return carrier.get("traceparent")
