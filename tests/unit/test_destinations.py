from __future__ import annotations

from typing import Any

import pytest

from receiver import DeliveryContext, Event
from receiver.destinations import takes_context


def event_only(event: Event) -> None: ...


async def with_context(event: Event, context: DeliveryContext) -> None: ...


def optional_context(event: Event, context: DeliveryContext | None = None) -> None: ...


def variadic(*args: Any) -> None: ...


def event_and_variadic(event: Event, *args: Any, **kwargs: Any) -> None: ...


def defaulted_extra(event: Event, retries: int = 3) -> None: ...


async def async_defaulted_extra(event: Event, retries: int = 3) -> None: ...


def keyword_only_extra(event: Event, *, verbose: bool = False) -> None: ...


class Recorder:
    def __call__(self, event: Event, context: DeliveryContext) -> None: ...


class AsyncRecorder:
    async def __call__(self, event: Event, context: DeliveryContext) -> None: ...


class DefaultedRecorder:
    def __call__(self, event: Event, retries: int = 3) -> None: ...


class VariadicRecorder:
    def __call__(self, *args: Any) -> None: ...


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (event_only, False),
        (with_context, True),
        (optional_context, False),
        (variadic, False),
        (event_and_variadic, False),
        (defaulted_extra, False),
        (async_defaulted_extra, False),
        (keyword_only_extra, False),
        (Recorder(), True),
        (AsyncRecorder(), True),
        (DefaultedRecorder(), False),
        (VariadicRecorder(), False),
    ],
)
def test_only_a_required_second_positional_parameter_takes_the_context(
    handler: Any, expected: bool
) -> None:
    assert takes_context(handler) is expected


def test_a_handler_that_cannot_take_the_event_is_refused() -> None:
    def three(event: Event, context: DeliveryContext, more: int) -> None: ...

    def none() -> None: ...

    with pytest.raises(TypeError, match="at most a context besides"):
        takes_context(three)
    with pytest.raises(TypeError, match="must take the event"):
        takes_context(none)
