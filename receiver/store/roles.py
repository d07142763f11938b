"""What each part of photohook needs from the store: one small Protocol per role.

A component depends on the roles it uses (ingest on :class:`Intake`, the worker on
:class:`Outbox`, ...), so that a fake for its tests implements a few methods;
:class:`~receiver.store.Store` is every role at once, and what :func:`~receiver.store.open_store`
returns. Each method is declared once, here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from receiver.events import Event
from receiver.store.records import (
    AttemptRecord,
    Batch,
    BatchDeclaration,
    BatchQuery,
    BatchTask,
    Claim,
    Count,
    Delivery,
    DeliveryQuery,
    DestinationStatus,
    EventDetail,
    EventQuery,
    FileOutcome,
    KeptFile,
    Outcome,
    Pruned,
    Receipt,
    RejectedQuery,
    RejectedRequest,
    Rejection,
    Route,
    Stored,
    Task,
    Tracking,
)


class Intake(Protocol):
    """What ingest writes: callbacks, and the ones refused for their content."""

    async def store(self, receipt: Receipt) -> Stored:
        """Store the receipt and its new events durably (committed when this returns).

        An event whose (source, task id, status) is already stored is a duplicate: it is not
        stored again; the receipt is kept, linked to the existing event, if its body differs.
        Raises :class:`~receiver.errors.StoreError` when the database cannot commit.
        """

    async def keep_rejected(self, rejection: Rejection) -> bool:
        """Keep an authenticated callback refused for its content, durably (committed when this
        returns); False when its source already keeps ``keep_at_most`` (the cap turned it away).
        Raises :class:`~receiver.errors.StoreError` when the database cannot commit."""


class Destinations(Protocol):
    """The destinations known to the store."""

    async def sync_destinations(self, names: Iterable[str]) -> None:
        """Make sure every configured destination has a state (active when new)."""


class Outbox(Destinations, Protocol):
    """What the delivery worker needs: leases on due deliveries, and their outcomes."""

    async def claim(
        self,
        limits: Mapping[str, int],
        worker_id: str,
        lease_seconds: float,
        now: float,
        busy: Mapping[str, int] | None = None,
    ) -> tuple[list[Claim], float | None]:
        """Lease due deliveries of each active destination, so that no more than
        ``limits[destination]`` are under way at once across all workers: the leases of other
        workers count against it, and so does ``busy[destination]``, how many of its deliveries
        this worker has under way (by default, all its own leases).

        A delivery is due when its time has come, it is not leased (or its lease expired), and no
        earlier event of the same task waits for the same destination. Also returns when the next
        delivery of those destinations falls due (None: none is waiting).

        Leases are committed without waiting for the disk (see :mod:`~.sqlstore`).
        """

    async def finish(self, outcome: Outcome) -> None:
        """Record an attempt and the delivery's new state (group-committed, without waiting
        for the disk: see :mod:`~.sqlstore`)."""

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` when another process makes deliveries due (where the engine can tell;
        workers also sweep)."""


class Actions(Destinations, Protocol):
    """What an operator does to deliveries and destinations."""

    async def add_deliveries(
        self, event_id: str, destinations: Iterable[str], *, new_message: bool = False
    ) -> list[str]:
        """New pending deliveries of an event (a replay); their ids. With ``new_message``, each
        is sent under a new ``webhook-id`` (``msg_...``), not the event id."""

    async def requeue(
        self,
        *,
        delivery_id: str | None = None,
        destination: str | None = None,
        event_id: str | None = None,
    ) -> int:
        """Queue dead deliveries again (matching all given filters); how many."""

    async def set_destination_state(self, name: str, state: str, reason: str | None) -> bool:
        """Pause, disable or resume a destination; False if no such destination."""


class TaskQueue(Protocol):
    """The reconciler's queue of tasks to ask their provider about."""

    async def track_task(
        self, source: str, task_id: str, business_id: str | None, tracking: Tracking, now: float
    ) -> Task:
        """Start tracking a task (done at once if a terminal event is already stored)."""

    async def claim_tasks(
        self, sources: Collection[str], worker_id: str, limit: int, lease: float, now: float
    ) -> tuple[list[Task], float | None]:
        """Lease tracked and confirming tasks of ``sources`` whose check is due; and when the
        next one falls due."""

    async def finish_task(
        self,
        task: Task,
        worker_id: str,
        *,
        state: str,
        next_check_at: float | None = None,
        error: str | None = None,
        confirmed: bool | None = None,
    ) -> None:
        """Record a check of a leased task; ``confirmed`` releases (True) or refuses (False) the
        deliveries of its confirming event."""


class Reads(Protocol):
    """Events, deliveries, attempts and tasks, as the admin API, the dashboard and the command
    line list them."""

    async def list_events(self, query: EventQuery) -> list[Event]:
        """Events matching ``query``, newest first."""

    async def get_event(self, event_id: str) -> Event | None:
        """One event, or None."""

    async def events_by_id(self, event_ids: Sequence[str]) -> dict[str, Event]:
        """The events of these ids that exist, by id."""

    async def event_detail(self, event_id: str) -> EventDetail | None:
        """The event, its stored requests, its deliveries and their attempts; None if unknown."""

    async def deliveries_of(self, event_ids: Sequence[str]) -> dict[str, list[Delivery]]:
        """The deliveries of these events, by event id, in destination order."""

    async def list_deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        """Deliveries matching ``query``: dead ones first, then newest first."""

    async def attempts(self, delivery_ids: Sequence[str]) -> dict[str, list[AttemptRecord]]:
        """The attempts of these deliveries, in order."""

    async def list_tasks(self, state: str | None = None, limit: int = 100) -> list[Task]:
        """Tracked tasks, most recently changed first."""


class Status(Protocol):
    """How the destinations and the reconciled tasks stand, for metrics and reports."""

    async def destination_statuses(self, now: float) -> list[DestinationStatus]:
        """The state and health of each destination."""

    async def task_summary(self) -> dict[str, dict[str, Any]]:
        """Per source: ``{"counts": {state: n}, "last_error": ...}``."""


class Activity(Protocol):
    """Counts over time, for the dashboard's charts."""

    async def callback_counts(self, since: float, bucket_seconds: int) -> list[Count]:
        """Accepted callbacks per source and bucket of ``bucket_seconds`` (60 or 3600) since
        ``since`` (the start of a bucket), reading that window alone."""

    async def attempt_counts(self, since: float, bucket_seconds: int) -> list[Count]:
        """Delivery attempts per destination, outcome (delivered, failed, dead) and bucket of
        ``bucket_seconds`` since ``since``, reading that window alone."""


class Rejected(Protocol):
    """Kept rejected requests, listed and retried."""

    async def list_rejected(self, query: RejectedQuery) -> list[RejectedRequest]:
        """Kept rejected requests matching ``query``, newest first."""

    async def get_rejected(self, rejected_id: str) -> RejectedRequest | None:
        """One kept rejected request, or None."""

    async def accept_rejected(self, rejected_id: str, receipt: Receipt) -> Stored:
        """Store a retried rejected request as :meth:`Intake.store` does, and record on it what
        that came to (accepted or duplicate, its events), in one transaction."""

    async def refuse_rejected(self, rejected_id: str, error: dict[str, Any]) -> None:
        """Record that a retry of a kept rejected request was refused again, and why."""


class Batches(Protocol):
    """Batches of tasks: declared, closed, expired at their deadline, listed. (Tasks also join
    them, and finish them, as :meth:`Intake.store` stores their events.)"""

    async def declare_batch(
        self, declaration: BatchDeclaration, route: Route | None = None
    ) -> Batch:
        """Create a batch or extend an open one, completing it if it is complete now (its
        ``batch.completed`` event routed by ``route``). Raises
        :class:`~receiver.errors.Conflict` for a change the batch cannot take."""

    async def close_batch(self, batch_id: str, route: Route | None = None) -> Batch | None:
        """Fix an open batch's size to the tasks it has (completing it if they are all final);
        None if there is no such batch."""

    async def sweep_batches(self, route: Route | None = None, limit: int = 100) -> list[str]:
        """Complete open batches whose tasks' final statuses were stored without reaching them,
        and expire those past their deadline (each with its event); the events' ids."""

    async def list_batches(self, query: BatchQuery) -> list[Batch]:
        """Batches matching ``query``, newest first."""

    async def batch_detail(self, batch_id: str) -> tuple[Batch, list[BatchTask]] | None:
        """A batch and its tasks; None if unknown."""


class Retention(Protocol):
    """Deleting what is old."""

    async def prune(
        self,
        cutoff: datetime,
        *,
        batch: int = 500,
        dry_run: bool = False,
        progress: Callable[[Pruned], None] | None = None,
    ) -> Pruned:
        """Delete events received before ``cutoff`` with nothing left to deliver, their
        deliveries and attempts, requests no kept event needs, tracked tasks that finished
        before it, and rejected requests received before it, in small transactions (each one's
        deletions given to ``progress``)."""


class Transfer(Protocol):
    """Every row, out and in: ``photohook export`` and ``import``."""

    def export_rows(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Every row of every table, as (table, {column: JSON-ready value}), parents first."""

    async def import_rows(self, table: str, found: Sequence[dict[str, Any]]) -> None:
        """Insert exported rows of ``table`` that are not there yet (in one transaction)."""

    async def table_counts(self) -> dict[str, int]:
        """How many rows each table holds."""


class Meta(Protocol):
    """Values photohook keeps for itself, and whether the database takes writes."""

    async def get_meta(self, key: str) -> str | None:
        """A value photohook keeps for itself."""

    async def set_meta(self, key: str, value: str | None) -> None:
        """Keep (or, with None, forget) a value."""

    async def url_token_key(self) -> str:
        """The key for URL tokens kept in the database, generated on first use."""

    async def check_writable(self) -> None:
        """Raise StoreError unless a write can be committed now."""


class Keeping(Protocol):
    """Result files kept in the result store: the keeper's queue, and reading what was kept."""

    async def claim_files(
        self, worker_id: str, limit: int, lease_seconds: float, now: float
    ) -> tuple[list[KeptFile], float | None]:
        """Lease up to ``limit`` files due to be fetched (waiting) or to have their copy deleted
        (pruned); and when the next one falls due."""

    async def finish_file(self, outcome: FileOutcome) -> bool:
        """Record a fetch of a leased file; when it was its event's last waiting file, its
        ``keeping`` deliveries become pending in the same transaction (then True)."""

    async def forget_files(self, files: Sequence[tuple[str, int]]) -> None:
        """Delete the rows of pruned files, (event id, position), whose copies are deleted."""

    async def release_files(self, worker_id: str) -> None:
        """Give up the leases of ``worker_id`` (a keeper stopping), so that the files it was
        fetching are fetched again at once, not when the leases run out."""

    async def kept_files(self, event_ids: Sequence[str]) -> dict[str, list[KeptFile]]:
        """The result files of these events, by event id, in order."""

    async def kept_file(self, event_id: str, position: int) -> KeptFile | None:
        """One result file of an event, or None (unknown, or pruned)."""

    async def holds_kept_files(self) -> bool:
        """Whether any result file is recorded: waiting, kept, missing or pruned."""


class Reconciling(TaskQueue, Intake, Reads, Meta, Protocol):
    """What the reconciler uses: its queue, storing what it recovers, the callback a confirmation
    is about, and whether a source's key was rejected."""


class Working(Outbox, Reconciling, Keeping, Batches, Protocol):
    """What a process's background work uses: the worker's outbox, the reconciler's roles, the
    keeper's queue of result files and the batches' sweep."""


class Replaying(Reads, Actions, Protocol):
    """What a bulk replay uses: the events a query finds, and new deliveries of each."""


class DestinationReport(Destinations, Status, Protocol):
    """What a report of the destinations uses: each configured one known, and how each stands."""


class ReconcilerReport(Status, Meta, Protocol):
    """What a report of the reconciler uses: the tasks by state, and whether a source's key was
    rejected."""


class Administering(Reads, Actions, Status, TaskQueue, Rejected, Meta, Batches, Protocol):
    """What the admin API uses: listing and reading, the operator's actions, the reports, tracking
    tasks, kept rejected requests and batches."""


class Dashboarding(Reads, Actions, Status, Rejected, Activity, Keeping, Batches, Protocol):
    """What the dashboard uses: the admin API's reading, actions and reports of destinations, the
    counts over time of its charts, the kept result files and the batches it shows."""


#: Every role, each declaring its own methods (the others are made of these).
ROLES: tuple[type, ...] = (
    Destinations,
    Intake,
    Outbox,
    Actions,
    TaskQueue,
    Reads,
    Status,
    Activity,
    Rejected,
    Batches,
    Retention,
    Transfer,
    Meta,
    Keeping,
)
