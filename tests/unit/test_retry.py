"""The retry schedule and what feeds it: ``Retry-After`` as a sink sends it, a handler's
``Retry(after=...)``; attempts are numbered from 1."""

from __future__ import annotations

import pytest

from receiver import DeliveryContext, Event, Retry
from receiver.delivery.senders import HandlerSender, parse_retry_after
from receiver.destinations import HandlerDestination
from receiver.retry import DEFAULT_SCHEDULE, RetrySchedule
from tests.unit.test_routing import event


def test_default_schedule() -> None:
    assert DEFAULT_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)


def test_delays_have_twenty_percent_jitter_then_the_delivery_is_dead() -> None:
    schedule = RetrySchedule(delays=(10.0, 100.0))
    first = [schedule.next_delay(1) for _ in range(500)]
    assert all(d is not None and 8.0 <= d <= 12.0 for d in first)
    assert len({round(d or 0, 3) for d in first}) > 100  # spread, not a constant
    second = schedule.next_delay(2)
    assert second is not None and 80.0 <= second <= 120.0
    assert schedule.next_delay(3) is None
    assert RetrySchedule(delays=()).next_delay(1) is None


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(0.0, 10.0), (5.0, 10.0), (15.0, 15.0), (20.0, 20.0), (3600.0, 20.0)],
)
def test_retry_after_is_clamped_between_the_delay_and_twice_it(
    retry_after: float, expected: float
) -> None:
    assert RetrySchedule(delays=(10.0,)).next_delay(1, retry_after) == expected


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_a_minute = parse_retry_after("Wed, 21 Oct 2099 07:28:00 GMT")
    assert in_a_minute is not None and in_a_minute > 1e6
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


CONTEXT = DeliveryContext(delivery_id="dlv_1", attempt=1, destination="app", message_id="evt_1")


def asks_again_in_a_minute(event: Event) -> None:
    raise Retry(after=60.0)


async def asks_again_in_a_minute_async(event: Event) -> None:
    raise Retry(after=60.0)


def asks_again(event: Event) -> None:
    raise Retry()


@pytest.mark.parametrize("handler", [asks_again_in_a_minute, asks_again_in_a_minute_async])
async def test_a_handlers_retry_after_is_honoured_by_the_schedule(handler) -> None:
    schedule = RetrySchedule(delays=(30.0, 300.0))
    sender = HandlerSender(HandlerDestination(name="app", handler=handler, retry=schedule))
    result = await sender.send(event(), CONTEXT)
    assert not result.attempt.ok
    assert result.attempt.error == "the handler asked to retry"
    assert result.retry_after == 60.0
    assert schedule.next_delay(1, result.retry_after) == 60.0


async def test_a_bare_retry_follows_the_schedule() -> None:
    sender = HandlerSender(HandlerDestination(name="app", handler=asks_again))
    result = await sender.send(event(), CONTEXT)
    assert not result.attempt.ok
    assert result.retry_after is None


@pytest.mark.parametrize("attempt", [0, -1])
def test_there_is_no_attempt_before_the_first(attempt: int) -> None:
    assert RetrySchedule(delays=(10.0, 20.0)).next_delay(attempt) is None
