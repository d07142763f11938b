"""Crashes under load, the exact set of deliveries, provider resends."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from pathlib import Path

from tests.integration.servers import Reply, Sink, running

from .helpers import (
    Serve,
    Traffic,
    deliveries,
    fotor_body,
    run_cli,
    send_all,
    serving_to,
    sink_config,
    size,
    stored_event_ids,
    wait_until,
)

MAX_IN_FLIGHT = 8


def test_sigkill_under_load_loses_no_acknowledged_event(tmp_path: Path) -> None:
    kills = size(3, 20)
    per_round = size(150, 600)
    sink = Sink(script=lambda n: Reply(delay=0.005))
    with running(sink.app, lifespan="off") as sink_url:
        (tmp_path / "photohook.toml").write_text(sink_config(sink_url, max_in_flight=MAX_IN_FLIGHT))
        serve = Serve(tmp_path)
        traffic = Traffic()
        try:
            for round_number in range(kills):
                serve.start()
                url = run_cli("url", "fotor", "--base-url", serve.base_url, cwd=tmp_path).stdout
                bodies = [fotor_body(i, prefix=f"r{round_number}") for i in range(per_round)]
                killer = threading.Timer(
                    random.uniform(0.2, per_round / 300 * 0.8), serve.signal, [signal.SIGKILL]
                )
                killer.start()
                before = len(traffic.acknowledged)
                asyncio.run(
                    send_all(url.strip(), bodies, concurrency=16, rate=300, traffic=traffic)
                )
                killer.join()
                assert serve.wait() == -signal.SIGKILL
                # Under load: the kill cut the round short (it takes 0.5 s at 300/s).
                assert len(traffic.acknowledged) - before < per_round, round_number
                serve.start()
                missing = set(traffic.acknowledged) - stored_event_ids(tmp_path)
                assert not missing, f"round {round_number}: {len(missing)} acknowledged events lost"
                serve.signal(signal.SIGKILL)
                serve.wait()
            serve.start()
            assert wait_until(
                lambda: all(d["state"] == "delivered" for d in deliveries(tmp_path)), within=60
            )
            serve.signal(signal.SIGTERM)
            serve.wait()
        finally:
            serve.stop()
    delivered = set(sink.ids)
    duplicates = len(sink.ids) - len(delivered)
    print(
        f"\n{kills} SIGKILLs at 300 callbacks/s: {len(traffic.acknowledged)} acknowledged, "
        f"{traffic.errors} connections cut by the kills, 0 lost; {len(delivered)} delivered, "
        f"{duplicates} duplicate deliveries (bound {kills * 2 * MAX_IN_FLIGHT})"
    )
    assert set(traffic.acknowledged) <= delivered
    assert duplicates <= kills * 2 * MAX_IN_FLIGHT  # each round is killed twice


def test_the_sink_receives_exactly_the_accepted_set(tmp_path: Path) -> None:
    count = size(600, 4000)
    sink = Sink()
    with serving_to(tmp_path, sink) as url:
        started = time.monotonic()
        traffic = asyncio.run(send_all(url, [fotor_body(i) for i in range(count)], concurrency=20))
        assert wait_until(lambda: len(sink.ids) >= len(traffic.acknowledged), within=60)
        seconds = time.monotonic() - started
    print(f"\n{count} callbacks from 20 senders: {len(sink.ids)} deliveries in {seconds:.1f}s")
    assert traffic.statuses == {200: count}
    assert set(sink.ids) == set(traffic.acknowledged)
    assert len(sink.ids) == count


def test_provider_resends_make_one_event_and_one_delivery(tmp_path: Path) -> None:
    tasks = size(100, 1000)
    sink = Sink()
    with serving_to(tmp_path, sink) as url:
        bodies = [fotor_body(i) for i in range(tasks)] * 4  # sent, then resent three times
        random.shuffle(bodies)
        traffic = asyncio.run(send_all(url, bodies, concurrency=16))
        # Every delivery recorded as delivered (a final state): no second one can come.
        assert wait_until(lambda: _all_delivered(tmp_path, tasks), within=60)
    events = len(stored_event_ids(tmp_path))
    print(f"\n{tasks} tasks sent 4 times: {events} events, {len(sink.ids)} deliveries")
    assert traffic.statuses == {200: tasks * 4}
    assert len(set(traffic.acknowledged)) == tasks
    assert len(stored_event_ids(tmp_path)) == tasks
    assert sorted(sink.ids) == sorted(set(traffic.acknowledged))


def _all_delivered(workdir: Path, count: int) -> bool:
    states = [d["state"] for d in deliveries(workdir)]
    return states == ["delivered"] * count
