"""Durable storage behind a narrow interface, one implementation per database engine."""

from __future__ import annotations

from typing import Protocol

from receiver.errors import ConfigError
from receiver.states import BATCH_STATES, DELIVERY_STATES, DESTINATION_STATES, TASK_STATES
from receiver.store.migrations import SchemaChange
from receiver.store.records import (
    Attempt,
    AttemptRecord,
    Batch,
    BatchDeclaration,
    BatchQuery,
    BatchRule,
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
    NewEvent,
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
from receiver.store.roles import (
    Actions,
    Activity,
    Administering,
    Batches,
    Dashboarding,
    DestinationReport,
    Destinations,
    Intake,
    Keeping,
    Meta,
    Outbox,
    Reads,
    ReconcilerReport,
    Reconciling,
    Rejected,
    Replaying,
    Retention,
    Status,
    TaskQueue,
    Transfer,
    Working,
)


class Store(
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
    Protocol,
):
    """What photohook needs from a database: every role of :mod:`.roles`, and opening it."""

    #: What :meth:`open` did to the schema (None before it is opened).
    schema: SchemaChange | None

    async def open(self, *, migrate: bool = True, create: bool = True) -> None:
        """Connect and apply pending migrations (with ``migrate=False``, raise StoreError if
        any is pending). With ``create=False``, raise NoDatabase, creating nothing, where the
        database holds no photohook schema (or, for SQLite, the file does not exist)."""

    async def close(self) -> None:
        """Finish pending commits and disconnect."""


def open_store(database_url: str) -> Store:
    """The store for ``database_url`` (``sqlite:///path`` or ``postgresql://...``), not yet
    opened."""
    scheme, _, rest = database_url.partition("://")
    if scheme in ("postgresql", "postgres") and rest:
        from receiver.store.postgres import PostgresStore

        return PostgresStore(database_url)
    if scheme == "sqlite":
        from receiver.store.sqlite import SQLiteStore

        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise ConfigError(
                f"database URL {database_url!r}: expected sqlite:///relative.db or "
                "sqlite:////absolute/path.db"
            )
        return SQLiteStore(rest[1:])
    raise ConfigError(
        f"database URL: unsupported scheme {scheme!r} (expected sqlite or postgresql)"
    )


__all__ = [
    "BATCH_STATES",
    "DELIVERY_STATES",
    "DESTINATION_STATES",
    "TASK_STATES",
    "Actions",
    "Activity",
    "Administering",
    "Attempt",
    "AttemptRecord",
    "Batch",
    "BatchDeclaration",
    "BatchQuery",
    "BatchRule",
    "BatchTask",
    "Batches",
    "Claim",
    "Count",
    "Dashboarding",
    "Delivery",
    "DeliveryQuery",
    "DestinationReport",
    "DestinationStatus",
    "Destinations",
    "EventDetail",
    "EventQuery",
    "FileOutcome",
    "Intake",
    "Keeping",
    "KeptFile",
    "Meta",
    "NewEvent",
    "Outbox",
    "Outcome",
    "Pruned",
    "Reads",
    "Receipt",
    "ReconcilerReport",
    "Reconciling",
    "Rejected",
    "RejectedQuery",
    "RejectedRequest",
    "Rejection",
    "Replaying",
    "Retention",
    "Route",
    "SchemaChange",
    "Status",
    "Store",
    "Stored",
    "Task",
    "TaskQueue",
    "Tracking",
    "Transfer",
    "Working",
    "open_store",
]
