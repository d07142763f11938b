"""The store for many processes: PostgreSQL through asyncpg.

Each process group-commits its own writes; PostgreSQL's unique index keeps one event per
(task, source, status) whichever receiver stored it first. Workers lease deliveries with
``SELECT ... FOR UPDATE SKIP LOCKED`` and are woken by ``LISTEN``/``NOTIFY``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from receiver import redact
from receiver.errors import StoreError
from receiver.store.migrations import Migration, has_schema, migrate, no_database
from receiver.store.records import Receipt, Stored
from receiver.store.sqlstore import SQLStore, reason
from receiver.store.tx import Dialect, Row, Tx

T = TypeVar("T")

logger = logging.getLogger("photohook.store")

DIALECT = Dialect(
    name="postgresql",
    table_exists="SELECT to_regclass('{table}') IS NOT NULL",
    json_array_holds=(
        "EXISTS (SELECT 1 FROM jsonb_array_elements_text(CAST({column} AS jsonb)) AS item (value)"
        " WHERE item.value = ?)"
    ),
    skip_locked=" FOR UPDATE SKIP LOCKED",
    integer_part="TRUNC({value})",
    for_update=" FOR UPDATE",
    for_no_key_update=" FOR NO KEY UPDATE",
    after_import=(
        "SELECT setval(pg_get_serial_sequence('attempts', 'id'),"
        " (SELECT COALESCE(MAX(id), 0) + 1 FROM attempts), false)"
    ),
)

#: The channel a transaction that makes deliveries due notifies.
CHANNEL = "photohook_deliveries"
#: Held while migrating, so that processes starting together migrate one at a time.
_MIGRATION_LOCK = 0x70686F746F686F6F  # "photohoo"
#: Seconds between checks that the listening connection is still up.
_LISTEN_CHECK = 5.0
#: Planner statistics are refreshed once this many callbacks, or a tenth of the stored events,
#: were stored since the last refresh (as autovacuum would, were it on).
_ANALYZE_AFTER = 1000
POOL_SIZE = 10
# A network that drops packets without a word (a partition, a host gone in a failover) closes
# nothing: without limits, one silent connection would hold every commit queued behind it until
# TCP gives up, many minutes later.
#: Seconds a statement of a write (storing callbacks, a worker's claim) may take before asyncpg
#: cancels it. A callback's commit is answered 503 past ``COMMIT_TIMEOUT`` (as long) anyway.
STATEMENT_TIMEOUT = 10.0
#: Seconds a write transaction may take in all before its connection is closed. Cancelling a
#: statement waits for the server to acknowledge it, which over a dead network never happens.
WRITE_TIMEOUT = 2 * STATEMENT_TIMEOUT
#: Seconds a read may take (an operator's query of a large database, say), then the same.
READ_TIMEOUT = 60.0
#: Seconds to open a connection (asyncpg's default is a minute).
CONNECT_TIMEOUT = 5.0
#: A 200 means the commit is on disk, whatever the server's default says.
_SETTINGS = {"synchronous_commit": "on"}
#: The server probes a connection silent this long, and ends its session when the peer does
#: not answer: a process that died while the network was down left its sessions behind, and a
#: session cut off in the middle of a statement's messages waits for the rest for ever, holding
#: its locks. (Sessions this process gave up on, it ends itself when it can: see
#: ``PostgresStore._end_abandoned``.) The operating system's default is two hours.
_KEEPALIVES = {
    "tcp_keepalives_idle": "30",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
}
#: The server ends a session left idle inside a transaction this long: the other half of a
#: connection this process gave up on, whose row locks (a destination's, while claiming) would
#: otherwise outlive it by hours. A live process never leaves a transaction idle for more than a
#: moment, and gives up on its own after ``WRITE_TIMEOUT``.
_IDLE_IN_TRANSACTION = f"{WRITE_TIMEOUT:g}s"


class _Tx:
    dialect = DIALECT

    def __init__(self, connection: asyncpg.Connection, timeout: float | None) -> None:
        self._connection = connection
        self._timeout = timeout
        self._notified = False

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        status = await self._connection.execute(_numbered(sql), *parameters, timeout=self._timeout)
        count = status.rpartition(" ")[2]
        return int(count) if count.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._connection.executemany(_numbered(sql), rows, timeout=self._timeout)

    async def fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        records = await self._connection.fetch(_numbered(sql), *parameters, timeout=self._timeout)
        return [tuple(record) for record in records]

    async def notify(self) -> None:
        if not self._notified:
            self._notified = True
            await self._connection.execute("SELECT pg_notify($1, '')", CHANNEL)


class PostgresStore(SQLStore):
    """A :class:`~receiver.store.Store` in a PostgreSQL database shared by many processes."""

    errors = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
    unavailable = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
    transient = (
        asyncpg.UniqueViolationError,
        asyncpg.DeadlockDetectedError,
        asyncpg.SerializationError,
    )

    def __init__(self, dsn: str, *, max_batch: int = 256, pool_size: int = POOL_SIZE) -> None:
        super().__init__(max_batch=max_batch)
        self.dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stored_since_analyze = 0
        self._analyze_after = _ANALYZE_AFTER
        self._analyzing: asyncio.Task[None] | None = None
        #: The server sessions of connections given up on, by server process id: when each was
        #: acquired (``time.monotonic()``). See :meth:`_end_abandoned`.
        self._abandoned: dict[int, float] = {}

    async def _connect(self, *, migrate: bool, create: bool) -> None:
        try:
            await self._migrate(apply=migrate, create=create)
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self._pool_size,
                timeout=CONNECT_TIMEOUT,
                # The bound on what the statements below do not set themselves: BEGIN, COMMIT,
                # ROLLBACK, and the reset of a connection handed back.
                command_timeout=STATEMENT_TIMEOUT,
                server_settings={
                    **_SETTINGS,
                    **_KEEPALIVES,
                    "idle_in_transaction_session_timeout": _IDLE_IN_TRANSACTION,
                },
            )
        except (*self.errors, ValueError) as exc:
            raise StoreError(f"cannot open the PostgreSQL database: {reason(exc)}") from exc

    async def store(self, receipt: Receipt) -> Stored:
        stored = await super().store(receipt)
        self._stored_since_analyze += 1
        if self._stored_since_analyze >= self._analyze_after and self._analyzing is None:
            self._stored_since_analyze = 0
            self._analyzing = asyncio.create_task(self._analyze(), name="photohook-analyze")
        return stored

    async def _analyze(self) -> None:
        """Refresh the planner's statistics of the growing tables. Without them PostgreSQL
        guesses, and the guesses turn the lookup of a batch's tasks into full scans of events and
        receipts; autovacuum keeps them fresh, but it may be off."""
        try:
            async with self._reading() as tx:
                await tx.execute("ANALYZE receipts, events, deliveries, attempts, tasks")
                [(events,)] = await tx.fetch(
                    "SELECT reltuples FROM pg_class WHERE oid = CAST('events' AS regclass)"
                )
            self._analyze_after = max(_ANALYZE_AFTER, int(events) // 10)
        except (*self.errors, StoreError) as exc:
            logger.warning("cannot refresh the planner's statistics: %s", reason(exc))
        finally:
            self._analyzing = None

    async def _disconnect(self) -> None:
        if self._analyzing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._analyzing
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._listener is not None:
            with contextlib.suppress(*self.errors):
                await self._listener.close(timeout=CONNECT_TIMEOUT)
            self._listener = None
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), 10)
            except (TimeoutError, *self.errors):
                self._pool.terminate()
            self._pool = None

    async def _in_transaction(
        self, work: Callable[[Tx], Awaitable[T]], *, durable: bool = True
    ) -> T:
        async with self._transaction() as tx:
            if not durable:
                await tx.execute("SET LOCAL synchronous_commit = off")
            return await work(tx)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Tx]:
        async with self._connection(WRITE_TIMEOUT) as connection, connection.transaction():
            yield _Tx(connection, STATEMENT_TIMEOUT)

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[_Tx]:
        async with self._connection(READ_TIMEOUT) as connection:
            yield _Tx(connection, READ_TIMEOUT)

    @contextlib.asynccontextmanager
    async def _connection(self, seconds: float) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the pool, closed at once if the block is still running after
        ``seconds`` (the block then fails with :class:`TimeoutError`). After any timeout, every
        connection of the pool is replaced as it is next used: the network that failed one has
        likely failed the others idle beside it, each of which would cost a timeout in turn."""
        if self._pool is None:
            raise StoreError("the store is not open")
        fired = False

        def close(connection: asyncpg.Connection) -> None:
            nonlocal fired
            fired = True
            connection.terminate()

        async with self._pool.acquire() as connection:
            acquired, pid = time.monotonic(), connection.get_server_pid()
            watchdog = asyncio.get_running_loop().call_later(seconds, close, connection)
            try:
                if self._abandoned:
                    await self._end_abandoned(connection)
                yield connection
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                if not fired:
                    raise
                self._abandoned[pid] = acquired
                await self._pool.expire_connections()
                raise TimeoutError(f"no answer within {seconds:g}s") from exc
            except TimeoutError:
                self._abandoned[pid] = acquired
                await self._pool.expire_connections()
                raise
            finally:
                watchdog.cancel()

    async def _end_abandoned(self, connection: asyncpg.Connection) -> None:
        """End the server sessions of the connections this process gave up on, now that the
        database answers again.

        Over a network that dropped every byte, closing a connection tells the server nothing:
        its session lives on, and with it the row locks of its transaction (a destination's, taken
        to claim deliveries, stops every worker's deliveries to it). A session left idle in its
        transaction ends after ``idle_in_transaction_session_timeout``, but one cut off in the
        middle of a statement's messages waits for the rest, bound by no timeout at all, until
        TCP gives up on the peer: hours later.

        A session is only ended if it began before the connection was acquired, so a new session
        that has since been given the same process id is left alone.
        """
        now = time.monotonic()
        pids = list(self._abandoned)
        try:
            ended = await self._terminate(
                connection, pids, [now - self._abandoned[p] for p in pids]
            )
        except asyncpg.PostgresError as exc:
            if isinstance(exc, self.unavailable):
                raise  # the network again: keep them for the next connection
            # Refused, not unanswered: the server's own timeouts will have to do.
            logger.warning("cannot end the database sessions this process gave up on: %s", exc)
            ended = []
        for pid in pids:
            self._abandoned.pop(pid, None)  # another connection may have ended it meanwhile
        if ended:
            logger.warning(
                "ended %d database session(s) this process had given up on: %s",
                len(ended),
                ", ".join(str(pid) for (pid,) in ended),
            )

    @staticmethod
    async def _terminate(
        connection: asyncpg.Connection, pids: list[int], ages: list[float]
    ) -> list[asyncpg.Record]:
        """End the sessions of ``pids`` that began at least ``ages`` seconds ago."""
        return await connection.fetch(  # type: ignore[no-any-return]
            # Materialized, so that the planner cannot apply pg_terminate_backend() to sessions
            # before it has picked the given ones.
            "WITH given AS MATERIALIZED ("
            " SELECT a.pid FROM pg_stat_activity a"
            " JOIN unnest($1::int[], $2::float8[]) AS abandoned (pid, age) USING (pid)"
            " WHERE a.pid != pg_backend_pid()"
            " AND a.backend_start < clock_timestamp() - make_interval(secs => abandoned.age))"
            " SELECT pid FROM given WHERE pg_terminate_backend(pid)",
            pids,
            ages,
            timeout=STATEMENT_TIMEOUT,
        )

    async def _migrate(self, *, apply: bool, create: bool = True) -> None:
        """Apply pending migrations, on a connection of their own and without a time limit:
        building an index on a large table takes as long as it takes."""
        connection = await asyncpg.connect(
            self.dsn, timeout=CONNECT_TIMEOUT, server_settings=_SETTINGS
        )
        try:
            async with connection.transaction():
                tx = _Tx(connection, None)
                await tx.fetch("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
                if not create and not await has_schema(tx):
                    raise no_database(f"{redact.url(self.dsn)} (no photohook schema there)")

                async def run_script(migration: Migration) -> None:
                    # Whole, its placeholders not numbered: one query of many statements.
                    await connection.execute(migration.sql)

                self.schema = await migrate(tx, apply=apply, run_script=run_script)
        finally:
            await connection.close(timeout=CONNECT_TIMEOUT)

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever a transaction of any process makes deliveries due; the
        connection is watched and opened again if it drops (the worker's sweep covers the gap)."""

        def notified(*_: object) -> None:
            wake()

        async def connect() -> None:
            self._listener = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT)
            await self._listener.add_listener(CHANNEL, notified)

        async def answers() -> bool:
            # A network that drops packets closes nothing: ask.
            listener = self._listener
            if listener is None or listener.is_closed():
                return False
            try:
                await listener.execute("SELECT 1", timeout=_LISTEN_CHECK)
            except (TimeoutError, *self.errors):
                listener.terminate()
                return False
            return True

        async def watch() -> None:
            while True:
                await asyncio.sleep(_LISTEN_CHECK)
                if not await answers():
                    try:
                        await connect()
                    except (TimeoutError, *self.errors) as exc:
                        logger.warning("cannot listen for new deliveries: %s", reason(exc))
                    else:
                        wake()  # whatever was notified while it was down

        try:
            await connect()
        except (TimeoutError, *self.errors) as exc:
            raise StoreError(f"cannot listen for new deliveries: {reason(exc)}") from exc
        self._watch = asyncio.create_task(watch(), name="photohook-listen")


_PLACEHOLDER = re.compile(r"\?")
_numbered_cache: dict[str, str] = {}


def _numbered(sql: str) -> str:
    """The statement with ``?`` placeholders numbered as PostgreSQL wants them (``$1``...)."""
    numbered = _numbered_cache.get(sql)
    if numbered is None:
        counter = iter(range(1, 1 << 16))
        numbered = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)
        if len(_numbered_cache) < 4096:
            _numbered_cache[sql] = numbered
    return numbered
