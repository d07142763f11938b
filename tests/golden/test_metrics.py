"""``/metrics``: each family's name, type, help and label names, once every family has samples."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import enable_created_metrics
from prometheus_client.parser import text_string_to_metric_families

from receiver.observability.metrics import drop_created_series
from tests.helpers import fixture
from tests.integration.providers import API_KEY, FakeFotor
from tests.integration.servers import Sink, eventually, running

from .golden import check

COMPLETED = fixture("fotor/upscale-completed")


def shape(exposition: str) -> str:
    """The exposition without its values: a line per family, then one per sample name with its
    label names (and a histogram's bucket bounds, which dashboards depend on)."""
    lines = []
    for family in text_string_to_metric_families(exposition):
        lines.append(f"# {family.name} {family.type} {family.documentation!r}")
        labels: dict[str, set[tuple[str, ...]]] = {}
        buckets: dict[str, set[str]] = {}
        for sample in family.samples:
            labels.setdefault(sample.name, set()).add(
                tuple(sorted(name for name in sample.labels if name != "le"))
            )
            if "le" in sample.labels:
                buckets.setdefault(sample.name, set()).add(sample.labels["le"])
        for name, label_sets in labels.items():
            for names in sorted(label_sets):
                lines.append(f"{family.name} {name}{{{','.join(names)}}}")
        for name, bounds in buckets.items():
            lines.append(f"{family.name} {name} le={','.join(sorted(bounds, key=float))}")
    return "\n".join(sorted(lines)) + "\n"


@pytest.fixture
def as_photohook_serve() -> Iterator[None]:
    """The process-wide switch that ``photohook serve`` sets at start-up, undone afterwards."""
    drop_created_series()
    yield
    enable_created_metrics()


async def test_the_metrics_names_types_help_and_labels_are_the_golden_ones(
    photohook: Callable[..., Any],
    sink_url: Callable[[Sink], str],
    stack: Any,
    as_photohook_serve: None,
) -> None:
    fotor = FakeFotor()
    api = stack.enter_context(running(fotor.app, lifespan="off"))
    sink = Sink()
    app = await photohook(
        f'[sources.fotor]\napi_key = "{API_KEY}"\napi_base_url = "{api}"\n'
        'reconcile_after = "100ms"\nreconcile_for = "1h"\n'
        f'[destinations.app]\nurl = "{sink_url(sink)}/hook"\n[[routes]]\nto = ["app"]\n'
    )
    await app.send(fixture("fotor/upscale-in-progress"))
    await app.send(fixture("fotor/upscale-in-progress"))  # a duplicate
    async with httpx.AsyncClient(base_url=app.base_url) as client:
        rejected = await client.post(app.hook, json={"taskId": "x"})
        assert rejected.status_code == 422
        fotor.tasks[COMPLETED["taskId"]] = COMPLETED  # the reconciler recovers it
        await eventually(lambda: len(sink.received) == 2)
        await eventually(lambda: app.settled(2))
        response = await client.get("/metrics")
    assert response.status_code == 200
    exposition = response.text
    for outcome in ("accepted", "duplicate", "rejected"):
        assert f'outcome="{outcome}"' in exposition  # every family has its samples
    assert 'photohook_reconciler_checks_total{outcome="recovered"' in exposition
    check("metrics.txt", shape(exposition))
