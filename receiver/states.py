"""The states of deliveries, reconciled tasks and destinations, as the database keeps them."""

from __future__ import annotations

from enum import StrEnum


class DeliveryState(StrEnum):
    """Where a delivery stands.

    pending: not tried yet; retrying: failed, tried again later; held: its destination is paused
    or disabled; confirming: its event waits for the provider to confirm it; keeping: its event's
    result files are being copied into the result store (``keep_results``); skipped: never to be
    sent (superseded, or the transform said so); unconfirmed: the provider contradicted its
    event; delivered and dead are final, though a dead one can be queued again.
    """

    PENDING = "pending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    DEAD = "dead"
    HELD = "held"
    CONFIRMING = "confirming"
    KEEPING = "keeping"
    SKIPPED = "skipped"
    UNCONFIRMED = "unconfirmed"


class TaskState(StrEnum):
    """Where a reconciled task stands.

    tracked: waiting for a terminal status; confirming: a terminal callback waits for the
    provider to confirm it; done; lost: nothing came within ``reconcile_for``; unconfirmed: the
    provider contradicted the callback (its deliveries are not sent).
    """

    TRACKED = "tracked"
    CONFIRMING = "confirming"
    DONE = "done"
    LOST = "lost"
    UNCONFIRMED = "unconfirmed"


class KeptState(StrEnum):
    """Where a result file to keep stands.

    waiting: not fetched yet, or fetched and failed and tried again later; kept: in the result
    store; missing: could not be fetched within the retry schedule (its event was delivered
    saying so); pruned: its event was deleted by retention, the stored copy is deleted next.
    """

    WAITING = "waiting"
    KEPT = "kept"
    MISSING = "missing"
    PRUNED = "pruned"


class BatchState(StrEnum):
    """Where a batch of tasks stands: open until every task has a final status (completed) or
    its deadline passes first (expired); both are final and have their one event."""

    OPEN = "open"
    COMPLETED = "completed"
    EXPIRED = "expired"


class DestinationState(StrEnum):
    """Whether a destination is sent to: active, or paused or disabled (its deliveries held)."""

    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


#: Deliveries that may still be sent: their event is kept until none is left.
WAITING = frozenset(
    {
        DeliveryState.PENDING,
        DeliveryState.RETRYING,
        DeliveryState.HELD,
        DeliveryState.CONFIRMING,
        DeliveryState.KEEPING,
    }
)
#: Deliveries a worker may claim once due.
CLAIMABLE = frozenset({DeliveryState.PENDING, DeliveryState.RETRYING})
#: Tasks the reconciler checks; the others are final.
CHECKED = frozenset({TaskState.TRACKED, TaskState.CONFIRMING})
FINAL_TASK_STATES = frozenset(TaskState) - CHECKED
#: Delivery states nothing moves a delivery out of (but an operator's requeue of a dead one).
FINAL_DELIVERY_STATES = frozenset(DeliveryState) - WAITING

#: The states' names, in order (for choices and schemas).
DELIVERY_STATES = tuple(state.value for state in DeliveryState)
DESTINATION_STATES = tuple(state.value for state in DestinationState)
TASK_STATES = tuple(state.value for state in TaskState)
KEPT_STATES = tuple(state.value for state in KeptState)
BATCH_STATES = tuple(state.value for state in BatchState)
