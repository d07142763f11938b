"""What a handler may be told besides the event: which delivery, which attempt, where."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """The second argument of a handler that takes two: ``def record(event, context)``."""

    delivery_id: str  #: the delivery being attempted (``dlv_...``)
    attempt: int  #: 1 for the first attempt of this delivery, 2 for the next, ...
    destination: str  #: the destination's name in the configuration
    #: What receivers deduplicate on (HTTP destinations' ``webhook-id``): the event id, unless
    #: the delivery is a replay sent as a new message (``photohook replay --new-id``).
    message_id: str
