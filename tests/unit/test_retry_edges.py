"""A handler's ``Retry(after=...)`` reaches the schedule, and attempts are numbered from 1."""

from __future__ import annotations

import pytest

from receiver import DeliveryContext, Event, Retry
from receiver.delivery.senders import HandlerSender
from receiver.destinations import HandlerDestination
from receiver.retry import RetrySchedule
from tests.unit.test_routing import event

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
