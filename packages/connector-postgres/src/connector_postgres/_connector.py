"""PostgresConnector: asyncpg behind connector_core's lifecycle and operation road."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
import operator
import re
import weakref
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any, ClassVar, Literal, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from connector_core import (
    BaseConnector,
    Catalog,
    ConnectorError,
    InvalidRequestError,
    NotConnectedError,
    Record,
    RecordError,
    SerializationError,
    WriteResult,
)
from connector_postgres._catalog import CatalogCache, Table, load_tables, resolve_table
from connector_postgres._config import IsolationLevel, PostgresConfig
from connector_postgres._errors import DriverTimeoutError, is_stale_catalog, translate_error
from connector_postgres._identifiers import column_list
from connector_postgres._keepalive import keep_alive
from connector_postgres._listen import Listener
from connector_postgres._read import RecordReader
from connector_postgres._results import ExecuteResult
from connector_postgres._transaction import (
    Connection,
    Interruption,
    PostgresTransaction,
    bound,
    close_now,
    current_transaction,
    guarded,
    is_open,
    open_cursor,
)
from connector_postgres._write import (
    STAGE_SCHEMA,
    STAGE_TABLE,
    drop_stage_sql,
    failing_index,
    is_record_error,
    key_of,
    merge_stage_sql,
    stage_sql,
    upsert_sql,
)

try:
    __version__ = _version("connector-postgres")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

T = TypeVar("T")
_Output = Callable[[bytes], Coroutine[Any, Any, None]]
logger = logging.getLogger("connector.postgres")
WriteMode = Literal["insert", "upsert"]
CopyFormat = Literal["csv", "text", "binary"]

# A statement that only reads: safe to run again after a transient failure. Anything
# that might write (or lock, or take a sequence value) is not retried unless the caller
# says so with idempotent=True.
_READ_START = re.compile(
    r"^\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*(?:select|with|values|table|show|explain)\b",
    re.IGNORECASE | re.DOTALL,
)
_MAY_WRITE = re.compile(
    r"\b(?:insert|update|delete|merge|into|copy|call|do|lock|nextval|setval|"
    r"pg_advisory\w*|for\s+(?:no\s+key\s+)?(?:update|share|key\s+share))\b",
    re.IGNORECASE,
)


def is_read_only(sql: str) -> bool:
    """Whether ``sql`` looks like a pure read (and so may be retried)."""
    return bool(_READ_START.match(sql)) and not _MAY_WRITE.search(sql)


class PostgresConnector(BaseConnector[PostgresConfig]):
    """A PostgreSQL connector over an asyncpg pool.

    Every driver call runs on :meth:`BaseConnector.run`: rate limit, circuit breaker,
    timeout, error translation, retry, stats. Reads outside a transaction are retried on
    transient errors (a dead pooled connection, a serialization failure); writes and
    everything inside a transaction are not. Errors are connector_core's typed errors:
    ConnectionFailedError, AuthenticationError, PermissionDeniedError, NotFoundError
    (42P01), ConflictError (23505), TransactionRollbackError (40001, 40P01),
    ConnectorTimeoutError (statement_timeout, command_timeout) and QueryError (anything
    else, with ``details["sqlstate"]`` and ``details["server_message"]``).
    """

    name: ClassVar[str] = "postgres"
    version: ClassVar[str] = __version__
    config_class: ClassVar[type[PostgresConfig]] = PostgresConfig

    def __init__(self, config: PostgresConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._pool: asyncpg.Pool | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._catalog = CatalogCache(config.catalog_cache_ttl)
        # Open listeners, each on a dedicated connection: closed by disconnect().
        self._listeners: weakref.WeakSet[Listener] = weakref.WeakSet()

    # -- driver hooks -------------------------------------------------------------------

    def _connect_kwargs(self) -> dict[str, Any]:
        c = self.config
        return {
            "dsn": c.driver_dsn(),
            "host": c.host,
            "port": c.port,
            "user": c.user,
            "password": c.password.get_secret_value() if c.password else None,
            "database": c.database,
            "ssl": c.ssl_argument(),
            "server_settings": c.all_server_settings(),
            "statement_cache_size": c.statement_cache_size,
            "command_timeout": c.command_timeout,
            "timeout": c.connect_timeout,
        }

    async def _connect(self) -> None:
        c = self.config
        pool = await asyncpg.create_pool(
            min_size=c.pool_min,
            max_size=c.pool_max,
            max_queries=c.max_queries,
            max_inactive_connection_lifetime=c.max_inactive_connection_lifetime,
            init=self._init_connection,
            **self._connect_kwargs(),
        )
        try:
            if c.pool_min == 0:  # nothing connected yet: prove the server answers
                async with pool.acquire() as connection:
                    # Part of connecting: connect_timeout is its budget, not command_timeout.
                    await connection.fetchval("SELECT 1", timeout=c.connect_timeout)
        except BaseException:
            pool.terminate()
            raise
        self._pool = pool

    async def _init_connection(self, connection: asyncpg.Connection) -> None:
        """Prepare each new connection (pooled or dedicated) before its first use."""
        if self.config.tcp_keepalive is not None:
            keep_alive(connection, self.config.tcp_keepalive)
        if not self.config.decode_json:
            return
        # json and jsonb as Python values (asyncpg's default is their text). In binary
        # format, so that binary COPY (write, copy_in) can encode them too: a text-only
        # codec has no binary encoder and COPY refuses the column.
        await connection.set_type_codec(
            "json",
            encoder=_json_encode,
            decoder=json.loads,
            schema="pg_catalog",
            format="binary",
        )
        await connection.set_type_codec(
            "jsonb",
            encoder=_jsonb_encode,
            decoder=_jsonb_decode,
            schema="pg_catalog",
            format="binary",
        )

    async def _disconnect(self) -> None:
        listeners = list(self._listeners)
        if listeners:
            await asyncio.gather(*(listener.close() for listener in listeners))
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if self._background:  # interrupted connections still on their way back
            await asyncio.wait(set(self._background), timeout=self.config.connect_timeout)
        try:
            # close() waits for borrowed connections; do not wait forever for a leak.
            await asyncio.wait_for(pool.close(), self.config.connect_timeout)
        except (Exception, TimeoutError):
            pool.terminate()

    async def _ping(self) -> None:
        # One retry on a fresh connection when the first one was already dead: the pool
        # replaces connections lazily, so a ping right after the server dropped them
        # would otherwise report a healthy server as down.
        for attempt in (1, 2):
            try:
                await self._with_connection(lambda c: c.fetchval("SELECT 1"))
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                if attempt == 2 or not _connection_closed_error(exc):
                    raise
            else:
                return

    def _translate_error(self, exc: BaseException) -> ConnectorError | None:
        return translate_error(exc, command_timeout=self.config.command_timeout)

    def _is_connection_lost(self, error: ConnectorError) -> bool:
        # The pool heals itself: a dead connection is replaced when next acquired.
        # Re-creating the whole pool would break every other task's connection.
        return False

    # -- connections --------------------------------------------------------------------

    def _require_pool(self) -> asyncpg.Pool:
        pool = self._pool
        if pool is None:
            raise NotConnectedError(
                "not connected: call connect() or use 'async with' first", connector=self.name
            )
        return pool

    async def _acquire(self, pool: asyncpg.Pool) -> PoolConnectionProxy:
        """A pooled connection; opening a new one that runs out of ``connect_timeout`` is
        a (transient) failed connection, as it is for ``connect()``."""
        try:
            connection: PoolConnectionProxy = await pool.acquire()
        except TimeoutError as exc:  # the driver's: see DriverTimeoutError
            raise self._connect_timed_out() from exc
        return connection

    def _connect_timed_out(self) -> DriverTimeoutError:
        return DriverTimeoutError(
            f"opening a connection timed out after {self.config.connect_timeout}s "
            "(connect_timeout)",
            connecting=True,
        )

    async def _with_connection(
        self, call: Callable[[Connection], Awaitable[T]], *, bulk_deadline: float | None = None
    ) -> T:
        """``call`` on a pooled connection (``bulk_deadline``: the deadline the driver was
        given for a bulk call, named when it runs out)."""
        pool = self._require_pool()
        connection = await self._acquire(pool)
        interruption = Interruption()
        try:
            return await guarded(lambda: call(connection), interruption, bulk_deadline)
        finally:
            if interruption.happened:
                self._release_later(pool, connection, None)
            else:
                await _release(pool, connection, self.config.connect_timeout)

    def _release_later(
        self, pool: asyncpg.Pool, connection: PoolConnectionProxy, tx: Transaction | None
    ) -> None:
        """Give back a connection whose statement was interrupted, without making the
        caller wait: asyncpg has sent the server a cancel request, and the connection is
        usable again once the server answers it, perhaps over a slow link. In the
        background: wait for that (bounded by ``connect_timeout``), roll back, release;
        if it takes too long, close the connection instead."""

        async def finish() -> None:
            try:
                async with asyncio.timeout(self.config.connect_timeout):
                    if tx is not None and is_open(connection):
                        await tx.rollback()
                    await pool.release(connection)
            except (Exception, asyncio.CancelledError) as exc:
                self.logger.debug("closing an interrupted connection (%s)", type(exc).__name__)
                close_now(connection)
                await _release(pool, connection, self.config.connect_timeout)

        task = asyncio.get_running_loop().create_task(finish())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _open_dedicated_connection(self) -> asyncpg.Connection:
        """A connection outside the pool (for LISTEN), with the same settings."""
        try:
            connection: asyncpg.Connection = await asyncpg.connect(**self._connect_kwargs())
        except TimeoutError as exc:  # the driver's: see DriverTimeoutError
            raise self._connect_timed_out() from exc
        try:
            await self._init_connection(connection)
        except BaseException:
            connection.terminate()
            raise
        return connection

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool, for what this class does not cover (NotConnectedError before
        ``connect()``). Calls made on it bypass retries, stats and error translation."""
        return self._require_pool()

    # -- queries ------------------------------------------------------------------------

    def _idempotent(self, sql: str, idempotent: bool | None) -> bool:
        return is_read_only(sql) if idempotent is None else idempotent

    async def query(
        self, sql: str, *args: Any, idempotent: bool | None = None
    ) -> list[asyncpg.Record]:
        """All rows of ``sql``, with ``args`` bound as $1, $2, ...

        Rows are ``asyncpg.Record``: by name (``row["id"]``) or position; ``dict(row)``
        for a dict. Retried on transient errors when the statement only reads (or when
        ``idempotent=True``). Inside ``async with connector.transaction()`` it runs on the
        transaction's connection and is never retried. Raises QueryError, NotFoundError,
        ConnectorTimeoutError, ...
        """
        tx = current_transaction(self)
        if tx is not None:
            return await tx.query(sql, *args)
        rows: list[asyncpg.Record] = await self.run(
            "query",
            lambda: self._with_connection(lambda c: c.fetch(sql, *args)),
            idempotent=self._idempotent(sql, idempotent),
        )
        return rows

    async def query_one(
        self, sql: str, *args: Any, idempotent: bool | None = None
    ) -> asyncpg.Record | None:
        """The first row of ``sql``, or None. Retries and errors as :meth:`query`."""
        tx = current_transaction(self)
        if tx is not None:
            return await tx.query_one(sql, *args)
        row: asyncpg.Record | None = await self.run(
            "query_one",
            lambda: self._with_connection(lambda c: c.fetchrow(sql, *args)),
            idempotent=self._idempotent(sql, idempotent),
        )
        return row

    async def query_value(
        self, sql: str, *args: Any, column: int = 0, idempotent: bool | None = None
    ) -> Any:
        """One value of the first row (None when there is none). As :meth:`query`."""
        tx = current_transaction(self)
        if tx is not None:
            return await tx.query_value(sql, *args, column=column)
        return await self.run(
            "query_value",
            lambda: self._with_connection(lambda c: c.fetchval(sql, *args, column=column)),
            idempotent=self._idempotent(sql, idempotent),
        )

    async def execute(self, sql: str, *args: Any, idempotent: bool = False) -> ExecuteResult:
        """Run a command; returns its status tag and the rows it affected.

        Not retried unless ``idempotent=True``. Without ``args`` the text may hold several
        statements (simple protocol). Inside ``async with connector.transaction()`` it
        runs on the transaction's connection. Raises ConflictError, QueryError, ...
        """
        tx = current_transaction(self)
        if tx is not None:
            return await tx.execute(sql, *args)
        status: str = await self.run(
            "execute",
            lambda: self._with_connection(lambda c: c.execute(sql, *args)),
            idempotent=idempotent,
        )
        return ExecuteResult.from_status(status)

    async def execute_many(
        self, sql: str, args: Iterable[Sequence[Any]], *, idempotent: bool = False
    ) -> None:
        """Run ``sql`` once per argument tuple, pipelined and atomic (all or none).

        Not retried unless ``idempotent=True`` (then ``args`` must be re-iterable).
        Inside ``async with connector.transaction()`` it runs in that transaction.
        """
        tx = current_transaction(self)
        if tx is not None:
            await tx.execute_many(sql, args)
            return
        await self.run(
            "execute_many",
            lambda: self._with_connection(lambda c: c.executemany(sql, args)),
            idempotent=idempotent,
        )

    # -- transactions -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(
        self,
        *,
        isolation: IsolationLevel | str | None = None,
        readonly: bool = False,
        deferrable: bool = False,
        independent: bool = False,
    ) -> AsyncIterator[PostgresTransaction]:
        """A transaction on one pooled connection, as an async context manager.

        Commits when the block ends; rolls back when it raises. A cancelled block closes
        its connection, which makes the server roll back at once. Statements inside are
        never retried; run the whole block again on a TransactionRollbackError (40001,
        40P01). Beginning the transaction is retried on transient errors (nothing has
        run yet).

        Nesting: inside an open block of the same task, ``connector.transaction()`` (like
        ``handle.transaction()``) is a SAVEPOINT on the same connection; an exception in
        it rolls back to the savepoint only. ``isolation``, ``readonly`` and
        ``deferrable`` belong to the outermost block (InvalidRequestError if given to a
        nested one). While a block is open, this task's ``query*``, ``execute*``,
        ``stream``, ``copy_in``, ``write``, ``read``, ``sample``, ``discover`` and
        ``notify`` calls on the connector run inside it, on its connection, never
        retried. Tasks started inside the block are not part of it.
        ``independent=True`` opens a separate transaction on another connection even
        inside an open one (it then takes this task's calls until its block ends).
        """
        current = None if independent else current_transaction(self)
        if current is not None:
            if isolation is not None or readonly or deferrable:
                raise InvalidRequestError(
                    "a nested transaction is a savepoint: isolation, readonly and "
                    "deferrable can only be set on the outermost transaction",
                    connector=self.name,
                )
            async with current.transaction() as savepoint:
                yield savepoint
            return
        async with self._transaction(isolation, readonly, deferrable, bind=True) as handle:
            yield handle

    @contextlib.asynccontextmanager
    async def _transaction(
        self,
        isolation: IsolationLevel | str | None,
        readonly: bool,
        deferrable: bool,
        *,
        bind: bool,
    ) -> AsyncIterator[PostgresTransaction]:
        level = IsolationLevel(isolation).value if isolation is not None else None
        if deferrable and not (readonly and level == IsolationLevel.SERIALIZABLE.value):
            raise InvalidRequestError(
                "deferrable=True needs readonly=True and isolation='serializable'",
                connector=self.name,
            )
        pool = self._require_pool()

        async def begin() -> tuple[PoolConnectionProxy, Transaction, Interruption]:
            connection = await self._acquire(pool)
            interruption = Interruption()
            try:
                tx = connection.transaction(
                    isolation=level,  # type: ignore[arg-type]
                    readonly=readonly,
                    deferrable=deferrable,
                )
                await guarded(tx.start, interruption)
            except BaseException:
                if interruption.happened:
                    self._release_later(pool, connection, None)
                else:
                    await _release(pool, connection, self.config.connect_timeout)
                raise
            return connection, tx, interruption

        connection, tx, interruption = await self.run("transaction.begin", begin, idempotent=True)
        handle = PostgresTransaction(self, connection, interruption)
        released = False
        try:
            try:
                if bind:
                    with bound(self, handle):
                        yield handle
                else:
                    yield handle
            except BaseException as exc:
                handle._active = False
                if isinstance(exc, asyncio.CancelledError):
                    interruption.mark()
                if interruption.happened:
                    # The server is still busy with (or cancelling) a statement: roll
                    # back in the background instead of waiting here.
                    self._release_later(pool, connection, tx)
                    released = True
                elif is_open(connection):
                    try:
                        await self.run(
                            "transaction.rollback",
                            lambda: guarded(tx.rollback, interruption),
                            retry=False,
                        )
                    except ConnectorError as error:
                        self.logger.warning("rollback failed (%s); closing the connection", error)
                        close_now(connection)
                raise
            else:
                handle._active = False
                if interruption.happened:
                    self._release_later(pool, connection, tx)
                    released = True
                    raise InvalidRequestError(
                        "a statement of this transaction timed out or was cancelled, so it "
                        "was rolled back, not committed",
                        connector=self.name,
                    )
                await self.run(
                    "transaction.commit", lambda: guarded(tx.commit, interruption), retry=False
                )
        finally:
            if not released:
                if interruption.happened:
                    self._release_later(pool, connection, None)
                else:
                    # Outside any operation's deadline: bounded here (the pool resets the
                    # connection with a round trip, which a dead link would never answer).
                    await _release(pool, connection, self.config.connect_timeout)

    # -- streaming and bulk ---------------------------------------------------------------

    async def stream(
        self, sql: str, *args: Any, batch_size: int | None = None
    ) -> AsyncIterator[asyncpg.Record]:
        """Rows of ``sql`` through a server-side cursor, ``batch_size`` rows per round trip
        (default: ``config.batch_size``): memory stays flat whatever the result size.

        Runs in its own transaction on one connection, held until the iteration ends;
        stop early with ``contextlib.aclosing(connector.stream(...))`` to return it
        promptly. Not retried once rows have flowed. Inside ``async with
        connector.transaction()`` the cursor is opened in that transaction. For the
        fastest consumption take whole batches with :meth:`stream_batches`. Raises
        InvalidRequestError (``batch_size`` < 1), QueryError and friends.
        """
        # One generator level, fetching batches itself: each row costs one step.
        size = batch_size or self.config.batch_size
        current = current_transaction(self)
        if current is not None:
            next_batch = await open_cursor(
                self, current._connection, current._interruption, sql, args, size
            )
            while True:
                rows = await next_batch()
                for row in rows:
                    yield row
                if len(rows) < size:
                    return
        # Not bound as the task's transaction: the caller's code between rows is not
        # part of this one (a generator shares its caller's context).
        async with self._transaction(None, False, False, bind=False) as tx:
            next_batch = await open_cursor(self, tx._connection, tx._interruption, sql, args, size)
            while True:
                rows = await next_batch()
                for row in rows:
                    yield row
                if len(rows) < size:
                    return

    async def stream_batches(
        self, sql: str, *args: Any, batch_size: int | None = None
    ) -> AsyncIterator[list[asyncpg.Record]]:
        """Like :meth:`stream`, but yields the rows as lists of up to ``batch_size`` rows
        (one list per round trip; never an empty list). Same cursor, transaction, flat
        memory and retry rules as :meth:`stream`; cheaper per row, since the caller loops
        over each list itself. Raises InvalidRequestError (``batch_size`` < 1), QueryError
        and friends.
        """
        size = batch_size or self.config.batch_size
        current = current_transaction(self)
        if current is not None:
            next_batch = await open_cursor(
                self, current._connection, current._interruption, sql, args, size
            )
            while True:
                rows = await next_batch()
                if rows:
                    yield rows
                if len(rows) < size:
                    return
        async with self._transaction(None, False, False, bind=False) as tx:
            next_batch = await open_cursor(self, tx._connection, tx._interruption, sql, args, size)
            while True:
                rows = await next_batch()
                if rows:
                    yield rows
                if len(rows) < size:
                    return

    async def _resolve(
        self,
        stream: str,
        tx: PostgresTransaction | None = None,
        *,
        columns: Iterable[str] = (),
        fresh: bool = False,
        join_transaction: bool = True,
    ) -> tuple[Table, bool]:
        """The table ``stream`` names, and whether it came from the cache.

        A cached table that lacks one of ``columns`` is looked up again once (a column
        added since), so the caller's NotFoundError is about the current table.
        """
        if tx is None and join_transaction:
            tx = current_transaction(self)
        if tx is not None:
            # Inside a transaction, resolve on its connection: it sees its own DDL, which
            # may yet be rolled back, so nothing it sees is cached.
            return await resolve_table(tx.query, self.config.schemas, stream), False
        if not fresh:
            cached = self._catalog.get(stream)
            if cached is not None:
                known = set(cached.columns)
                if all(c in known for c in columns):
                    return cached, True
        table = await resolve_table(self._pooled_catalog_fetch, self.config.schemas, stream)
        self._catalog.put(stream, table)
        return table, False

    async def _with_table(
        self,
        stream: str,
        call: Callable[[Table], Awaitable[T]],
        *,
        columns: Iterable[str] = (),
        rerunnable: bool = True,
    ) -> T:
        """``call(table)`` for the table ``stream`` names. When the server says a cached
        look-up is stale (undefined table or column, changed row type), forget it, look
        the name up again and, if ``rerunnable``, call once more (the failed statement
        was refused before it changed anything)."""
        names = tuple(columns)
        table, cached = await self._resolve(stream, columns=names)
        try:
            return await call(table)
        except ConnectorError as error:
            if not is_stale_catalog(error):
                raise
            self._catalog.invalidate(stream)
            if not cached or not rerunnable:
                raise
            self.logger.debug("catalog entry of %r was stale; looking it up again", stream)
        table, _ = await self._resolve(stream, columns=names, fresh=True)
        return await call(table)

    def invalidate_catalog(self, stream: str | None = None) -> None:
        """Forget the cached catalog look-up of ``stream`` (bare or ``schema.name``), or of
        every table when None. Call it after DDL that changes a table's columns or keys
        if the next calls must see it before ``config.catalog_cache_ttl`` runs out
        (dropped tables and columns are noticed by themselves)."""
        self._catalog.invalidate(stream)

    async def _catalog_fetch(self, sql: str, *args: Any) -> Sequence[Any]:
        tx = current_transaction(self)
        if tx is not None:
            return await tx.query(sql, *args)
        return await self._pooled_catalog_fetch(sql, *args)

    async def _pooled_catalog_fetch(self, sql: str, *args: Any) -> Sequence[Any]:
        rows: list[Any] = await self.run(
            "catalog",
            lambda: self._with_connection(lambda c: c.fetch(sql, *args)),
            idempotent=True,
        )
        return rows

    @staticmethod
    def _columns(table: Table, columns: Sequence[str] | None) -> tuple[str, ...]:
        if columns is None:
            return table.columns
        for column in columns:
            table.column(column)  # NotFoundError naming the known columns
        return tuple(columns)

    async def copy_in(
        self,
        table: str,
        records: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]],
        *,
        columns: Sequence[str] | None = None,
    ) -> int:
        """Binary COPY of ``records`` (tuples in ``columns`` order; default: every column
        of the table in order) into ``table``; returns the number of rows copied.

        All or nothing (one COPY statement); not retried. ``table`` and ``columns`` are
        resolved against the catalog first: unknown names raise NotFoundError. Bounded by
        ``config.bulk_deadline()`` (ConnectorTimeoutError): scaled with ``len(records)``
        for a list or tuple, ``10 * timeout`` for other iterables, unless ``bulk_timeout``
        is set.
        """
        tx = current_transaction(self)
        if tx is not None:
            return await self._copy_in_on(tx, tx._connection, table, records, columns)
        timeout = self.config.bulk_deadline(_known_count(records))

        async def copy(resolved: Table) -> int:
            cols = self._copy_target(resolved, columns)

            async def on(c: Connection) -> str:
                status: str = await c.copy_records_to_table(
                    resolved.name,
                    records=records,
                    columns=cols,
                    schema_name=resolved.schema,
                    timeout=timeout,
                )
                return status

            status = await self.run(
                "copy_in",
                lambda: self._with_connection(on, bulk_deadline=timeout),
                retry=False,
                timeout=timeout,
            )
            return ExecuteResult.from_status(status).rowcount or 0

        # A stale look-up is refused before any record is read; still, only a Sequence
        # is certain to give the same records a second time.
        return await self._with_table(
            table, copy, columns=columns or (), rerunnable=isinstance(records, Sequence)
        )

    def _copy_target(self, table: Table, columns: Sequence[str] | None) -> tuple[str, ...]:
        if not table.writable:
            raise InvalidRequestError(
                f"cannot copy into {table.stream.kind} {table.stream.qualified_name!r}",
                connector=self.name,
            )
        return self._columns(table, columns)

    async def _copy_in_on(
        self,
        tx: PostgresTransaction,
        connection: Connection,
        table_name: str,
        records: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]],
        columns: Sequence[str] | None,
    ) -> int:
        table, _ = await self._resolve(table_name, tx)
        cols = self._copy_target(table, columns)
        timeout = self.config.bulk_deadline(_known_count(records))

        async def copy() -> str:
            status: str = await connection.copy_records_to_table(
                table.name, records=records, columns=cols, schema_name=table.schema, timeout=timeout
            )
            return status

        status = await tx._run("copy_in", copy, bulk_deadline=timeout)
        return ExecuteResult.from_status(status).rowcount or 0

    async def copy_out(
        self,
        table: str,
        *,
        columns: Sequence[str] | None = None,
        format: CopyFormat = "csv",
        header: bool = False,
    ) -> AsyncIterator[bytes]:
        """The table's rows as COPY output chunks (``csv``, ``text`` or ``binary``).

        A bounded queue between the COPY and the consumer keeps memory flat: a slow
        consumer slows the COPY down. It runs on a pooled connection of its own, outside
        any open ``transaction()``. The whole COPY, the consumer's time included, is
        bounded by ``config.bulk_deadline(None)`` (``bulk_timeout``, else ``10 * timeout``):
        ConnectorTimeoutError. Raises NotFoundError for an unknown table or column.
        """
        names = tuple(columns or ())
        resolved, cached = await self._resolve(table, columns=names, join_transaction=False)
        while True:
            cols = self._columns(resolved, columns)

            async def start(
                c: Connection,
                output: _Output,
                timeout: float | None,
                resolved: Table = resolved,
                cols: tuple[str, ...] = cols,
            ) -> Any:
                return await c.copy_from_table(
                    resolved.name,
                    schema_name=resolved.schema,
                    columns=cols,
                    output=output,
                    format=format,
                    header=header if format == "csv" else None,
                    timeout=timeout,
                )

            sent = False
            try:
                async for chunk in self._copy_out(start):
                    sent = True
                    yield chunk
            except ConnectorError as error:
                if not is_stale_catalog(error):
                    raise
                self._catalog.invalidate(table)
                if sent or not cached:
                    raise
            else:
                return
            resolved, cached = await self._resolve(
                table, columns=names, fresh=True, join_transaction=False
            )

    async def copy_out_query(
        self, sql: str, *args: Any, format: CopyFormat = "csv", header: bool = False
    ) -> AsyncIterator[bytes]:
        """The result of ``sql`` as COPY output chunks; see :meth:`copy_out`."""

        async def start(c: Connection, output: _Output, timeout: float | None) -> Any:
            return await c.copy_from_query(
                sql,
                *args,
                output=output,
                format=format,
                header=header if format == "csv" else None,
                timeout=timeout,
            )

        async for chunk in self._copy_out(start):
            yield chunk

    async def _copy_out(
        self, start: Callable[[Connection, _Output, float | None], Awaitable[Any]]
    ) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=8)
        done = object()
        # The size of a COPY's output is not known up front; the deadline covers the
        # consumer's time too (a full queue holds the COPY back).
        timeout = self.config.bulk_deadline(None)

        async def output(chunk: bytes) -> None:
            await queue.put(bytes(chunk))

        async def produce() -> None:
            try:
                await self.run(
                    "copy_out",
                    lambda: self._with_connection(
                        lambda c: start(c, output, timeout), bulk_deadline=timeout
                    ),
                    retry=False,
                    timeout=timeout,
                )
            except ConnectorError as error:
                await queue.put(error)
            else:
                await queue.put(done)

        task = asyncio.create_task(produce())
        try:
            while True:
                item = await queue.get()
                if item is done:
                    break
                if isinstance(item, ConnectorError):
                    raise item
                yield item
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- capabilities: discover, read, sample, write --------------------------------------

    async def discover(self) -> Catalog:
        """Tables and views of ``config.schemas``: columns with portable types and
        nullability, primary keys, foreign keys, estimated row counts (from the planner's
        statistics; None until the table is first analyzed) and a suggested cursor field
        (``updated_at`` and similar names). Raises ConnectionFailedError, ..."""
        tables = await load_tables(self._catalog_fetch, self.config.schemas)
        return Catalog(streams=tuple(t.stream for t in tables))

    async def stream_info(self, stream: str) -> Table:
        """The resolved table behind ``stream`` (NotFoundError listing the known ones)."""
        table, _ = await self._resolve(stream)
        return table

    def read(
        self,
        stream: str,
        *,
        since: Any = None,
        cursor_field: str | None = None,
        limit: int | None = None,
        key_fields: Sequence[str] | None = None,
        batch_size: int | None = None,
        lag: float | dt.timedelta | None = None,
    ) -> RecordReader:
        """Records of ``stream`` in (``cursor_field``, primary key) order, as dicts.

        Pages are keyset queries (``WHERE (cursor, pk) > (last) ORDER BY cursor, pk``), so
        rows sharing a cursor value are neither skipped nor repeated between pages. Each
        page is retried on transient errors. ``since`` is:

        * None: from the start;
        * a Checkpoint (connector_core's, or its subclass ReadCheckpoint; or a ``(cursor,
          key)`` tuple): strictly after that row; use ``reader.checkpoint`` of the
          previous run for exactly-once across runs;
        * a plain value: rows whose cursor is >= it (at least once: rows at that value are
          read again rather than risk missing rows added later with the same value).

        Rows whose cursor is NULL are not returned. Without ``cursor_field`` rows come in
        primary-key order. The cursor may be (part of) the key: ``read("t",
        cursor_field="id")`` pages by ``id`` alone. ``key_fields`` overrides the primary
        key (needed for views and tables without one); its columns must be NOT NULL in a
        table (InvalidRequestError otherwise: a NULL key cannot be compared, so such rows
        would be skipped); in a view, whose nullability the catalog does not know, rows
        with a NULL key are left out. A checkpoint that went through JSON (timestamps,
        decimals, UUIDs as strings) is cast back to the columns' types.

        ``lag`` (seconds or a timedelta; date/timestamp cursors only) reads only rows
        whose cursor is at most ``now() - lag``. A row stamped ``now()`` by a transaction
        that commits after a later-stamped row was read would fall behind the checkpoint
        and never be read; a lag longer than your longest writing transaction closes that
        window (see docs/decisions/0024). Raises NotFoundError for an unknown stream or
        field, InvalidRequestError for a key or lag that cannot work.
        """
        wanted = tuple(key_fields or ()) + ((cursor_field,) if cursor_field else ())

        async def load_table(fresh: bool) -> tuple[Table, bool]:
            return await self._resolve(stream, columns=wanted, fresh=fresh)

        return RecordReader(
            self._page_fetch,
            load_table,
            since=since,
            cursor_field=cursor_field,
            key_fields=key_fields,
            limit=limit,
            page_size=batch_size or self.config.batch_size,
            lag=dt.timedelta(seconds=lag) if isinstance(lag, (int, float)) else lag,
        )

    async def _page_fetch(self, sql: str, *args: Any) -> Sequence[Any]:
        tx = current_transaction(self)
        if tx is not None:
            return await tx.query(sql, *args)
        rows: list[Any] = await self.run(
            "read", lambda: self._with_connection(lambda c: c.fetch(sql, *args)), idempotent=True
        )
        return rows

    async def sample(self, stream: str, n: int = 10) -> list[Record]:
        """Up to ``n`` records of ``stream`` (no particular order), as dicts."""
        if n < 0:
            raise InvalidRequestError("n must be >= 0", connector=self.name)

        async def sample_of(table: Table) -> list[Record]:
            sql = f"SELECT {column_list(table.columns)} FROM {table.sql_name} LIMIT $1"  # noqa: S608
            tx = current_transaction(self)
            if tx is not None:
                return [dict(r) for r in await tx.query(sql, n)]
            rows = await self.run(
                "sample", lambda: self._with_connection(lambda c: c.fetch(sql, n)), idempotent=True
            )
            return [dict(r) for r in rows]

        return await self._with_table(stream, sample_of)

    async def write(
        self, stream: str, records: Iterable[Record], *, mode: WriteMode | None = None
    ) -> WriteResult:
        """Write ``records`` (mappings with the same fields) into ``stream``, atomically.

        ``mode="upsert"`` (the default when the table has a primary key) inserts or
        updates by primary key (``ON CONFLICT (pk) DO UPDATE``; of several records with
        one key the last wins): batches of ``config.upsert_copy_threshold`` records or
        more go through a binary COPY into a temporary table, smaller ones through a
        pipelined INSERT. ``mode="insert"`` is a binary COPY straight into the table.

        The batch is all or nothing. When a record is rejected (a bad value, a constraint,
        a record whose fields differ from the first record's) nothing is written and the
        WriteResult says ``failed=len(records)`` with a RecordError naming the culprit
        (``index`` -1 when the server did not say which). Other failures raise:
        NotFoundError (unknown stream or field), InvalidRequestError,
        ConnectionFailedError, ...

        Retries: an upsert is idempotent, so it is retried on transient errors (a pooled
        connection that died, even if it died while committing). An insert is not: if
        the connection dies during its COPY the commit may or may not have happened, and a
        retry could write the rows twice; the ConnectionFailedError goes to the caller.
        Inside ``async with connector.transaction()`` the write runs in a SAVEPOINT on the
        transaction's connection (a rejected batch leaves the transaction usable) and is
        never retried.

        Deadline: ``config.bulk_deadline(len(records))``, by default ``timeout`` plus 1 ms
        per record (``bulk_timeout`` replaces it): ConnectorTimeoutError when it runs out.
        """
        batch: Sequence[Record] = records if isinstance(records, (list, tuple)) else list(records)
        if not batch:
            return WriteResult()
        columns = tuple(batch[0].keys())

        async def write_into(table: Table) -> WriteResult:
            return await self._write_table(table, batch, columns, mode)

        return await self._with_table(stream, write_into, columns=columns)

    async def _write_table(
        self,
        table: Table,
        batch: Sequence[Record],
        columns: tuple[str, ...],
        mode: WriteMode | None,
    ) -> WriteResult:
        if not table.writable:
            raise InvalidRequestError(
                f"cannot write into {table.stream.kind} {table.stream.qualified_name!r}",
                connector=self.name,
            )
        for column in columns:
            table.column(column)
        pk = table.stream.primary_key
        if mode is None:
            mode = "upsert" if pk else "insert"
        if mode == "upsert":
            if not pk:
                raise InvalidRequestError(
                    f"upsert needs a primary key; {table.stream.qualified_name!r} has none",
                    connector=self.name,
                )
            missing = [k for k in pk if k not in columns]
            if missing:
                raise InvalidRequestError(
                    f"upsert needs the primary key in every record; missing {missing}",
                    connector=self.name,
                )
        elif mode != "insert":
            raise InvalidRequestError(f"unknown write mode {mode!r}", connector=self.name)
        getter = _row_getter(columns)
        # Every statement of the write gets the whole bulk deadline (not command_timeout,
        # which is sized for ordinary statements); the operation's deadline bounds the sum.
        timeout = self.config.bulk_deadline(len(batch))
        tx = current_transaction(self)
        staged = len(batch) >= self.config.upsert_copy_threshold

        async def insert(c: Connection, rows: Iterator[tuple[Any, ...]]) -> None:
            await c.copy_records_to_table(
                table.name, records=rows, columns=columns, schema_name=table.schema, timeout=timeout
            )

        async def upsert(c: Connection, rows: Iterator[tuple[Any, ...]]) -> None:
            if staged:
                await c.execute(stage_sql(table, columns), timeout=timeout)
                await c.copy_records_to_table(
                    STAGE_TABLE,
                    records=rows,
                    columns=columns,
                    schema_name=STAGE_SCHEMA,
                    timeout=timeout,
                )
                await c.execute(merge_stage_sql(table, columns, pk), timeout=timeout)
                if tx is not None:  # ON COMMIT DROP is at the outer commit: too late
                    await c.execute(drop_stage_sql(), timeout=timeout)
            else:
                await c.executemany(upsert_sql(table, columns, pk), rows, timeout=timeout)

        work = upsert if mode == "upsert" else insert
        # An insert outside a transaction is one COPY statement: atomic by itself.
        atomic = mode == "upsert" or tx is not None

        async def checked(c: Connection) -> None:
            source = _RowSource(batch, getter, len(columns))
            try:
                if atomic:
                    await _atomically(c, lambda: work(c, iter(source)))
                else:
                    await work(c, iter(source))
            except (KeyError, _ShapeMismatchError):  # a record unlike the first one
                raise _BadRecordError(None, "record shape") from None
            except (TypeError, ValueError, OverflowError) as exc:
                if isinstance(exc, asyncpg.InterfaceError) and "element #" in str(exc):
                    raise  # asyncpg names the element itself
                index = source.position()
                raise _BadRecordError(index, f"cannot encode a value: {exc}") from exc

        try:
            if tx is not None:
                await tx._run(
                    f"write.{mode}", lambda: checked(tx._connection), bulk_deadline=timeout
                )
            else:
                await self.run(
                    f"write.{mode}",
                    lambda: self._with_connection(checked, bulk_deadline=timeout),
                    idempotent=mode == "upsert",
                    timeout=timeout,
                )
        except ConnectorError as error:
            bad = error.__cause__
            if isinstance(bad, _BadRecordError):
                found = _first_mismatch(batch, columns, pk) if bad.index is None else None
                if found is None:
                    at = bad.index if bad.index is not None else -1
                    found = RecordError(
                        index=at,
                        message=bad.reason,
                        code=SerializationError.code,
                        key=key_of(batch[at], pk) if 0 <= at < len(batch) else None,
                    )
                return WriteResult(written=0, failed=len(batch), errors=(found,))
            if not is_record_error(error):
                raise
            culprit = failing_index(error)
            in_batch = culprit is not None and 0 <= culprit < len(batch)
            key = key_of(batch[culprit], pk) if culprit is not None and in_batch else None
            record_error = RecordError(
                index=culprit if culprit is not None and in_batch else -1,
                message=error.message,
                code=error.code,
                key=key,
            )
            return WriteResult(written=0, failed=len(batch), errors=(record_error,))
        return WriteResult(written=len(batch), failed=0)

    # -- LISTEN / NOTIFY ------------------------------------------------------------------

    def listen(
        self, *channels: str, keepalive: float = 30.0, reconnect_timeout: float = 60.0
    ) -> Listener:
        """Notifications on ``channels`` as an async iterator (see :class:`Listener`).

        ``async with connector.listen("jobs") as listener:`` listens on entry;
        ``async for n in listener`` yields :class:`Notification` objects. It reconnects
        by itself when its connection is lost; ``connector.disconnect()`` closes it (its
        iteration then ends). Raises InvalidRequestError for an invalid channel name, or a
        ``keepalive`` or ``reconnect_timeout`` that is not a finite number of seconds.
        """
        if not channels:
            raise InvalidRequestError("listen() needs at least one channel", connector=self.name)
        return Listener(
            self, tuple(channels), keepalive=keepalive, reconnect_timeout=reconnect_timeout
        )

    async def notify(self, channel: str, payload: str = "") -> None:
        """Send a notification (``pg_notify``; the payload is a bind parameter). Inside
        ``async with connector.transaction()`` it is sent when that transaction commits."""
        tx = current_transaction(self)
        if tx is not None:
            await tx.execute("SELECT pg_notify($1, $2)", channel, payload)
            return
        await self.run(
            "notify",
            lambda: self._with_connection(
                lambda c: c.execute("SELECT pg_notify($1, $2)", channel, payload)
            ),
        )


class _BadRecordError(Exception):
    """A record of a write batch could not be encoded (``index`` None: find it by shape)."""

    def __init__(self, index: int | None, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


async def _release(pool: asyncpg.Pool, connection: PoolConnectionProxy, timeout: float) -> None:
    """Give ``connection`` back; its reset round trip may take ``timeout`` seconds, after
    which asyncpg closes it instead (the pool opens a new one when needed)."""
    try:
        await pool.release(connection, timeout=timeout)
    except Exception as exc:  # asyncpg has already terminated the connection
        logger.debug("releasing a connection failed: %s", type(exc).__name__)


def _known_count(records: object) -> int | None:
    """How many records a bulk call moves, when that is known before it starts."""
    return len(records) if isinstance(records, Sequence) else None


def _connection_closed_error(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresConnectionError):
        return True
    text = str(exc)
    return "connection is closed" in text or "connection was closed" in text


def _json_encode(value: Any) -> bytes:
    # json's binary format is its text.
    return json.dumps(value).encode()


# jsonb's binary format: a version byte (1), then the text.
_JSONB_VERSION = b"\x01"


def _jsonb_encode(value: Any) -> bytes:
    return _JSONB_VERSION + json.dumps(value).encode()


def _jsonb_decode(data: bytes) -> Any:
    if data[:1] != _JSONB_VERSION:
        raise ValueError(f"unsupported jsonb binary format version {data[:1]!r}")
    return json.loads(data[1:])


def _row_getter(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(columns) == 1:
        only = columns[0]
        return lambda record: (record[only],)
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = operator.itemgetter(*columns)
    return getter


# Records per chunk of a write batch whose shape is checked at once.
_CHUNK = 4096


class _ShapeMismatchError(Exception):
    """A chunk of a write batch holds a record with more or fewer fields than the first."""


class _RowSource:
    """The records of a write batch as tuples in ``columns`` order, for the driver.

    Chunk by chunk: each chunk's shape is checked at C speed (its records' field counts
    must add up to ``width`` per record; with the KeyError a missing field raises while
    converting, that proves every record has exactly the first record's fields) right
    before ``operator.itemgetter`` converts it, so the checks run while the server is
    busy with the previous chunk instead of before anything is sent. A failure only
    says *that* something is wrong; ``_first_mismatch`` then finds *which* record.
    """

    __slots__ = ("_batch", "_getter", "_part", "_part_len", "_start", "_width")

    def __init__(
        self,
        batch: Sequence[Record],
        getter: Callable[[Record], tuple[Any, ...]],
        width: int,
    ) -> None:
        self._batch = batch
        self._getter = getter
        self._width = width
        self._start = 0
        self._part_len = 0
        self._part: Iterator[Record] = iter(())

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        self._start, self._part_len, self._part = 0, 0, iter(())
        return itertools.chain.from_iterable(map(self._chunk, range(0, len(self._batch), _CHUNK)))

    def _chunk(self, start: int) -> Iterator[tuple[Any, ...]]:
        part = self._batch[start : start + _CHUNK]
        if sum(map(len, part)) != self._width * len(part):
            raise _ShapeMismatchError
        self._start, self._part_len = start, len(part)
        self._part = iter(part)
        return map(self._getter, self._part)

    def position(self) -> int:
        """The batch index of the record handed to the driver last (the driver encodes
        each record as soon as it takes it)."""
        return self._start + self._part_len - operator.length_hint(self._part) - 1


async def _atomically(c: Connection, call: Callable[[], Awaitable[None]]) -> None:
    """``call()`` in a transaction (a SAVEPOINT when one is open on ``c``)."""
    tx = c.transaction()
    await tx.start()
    try:
        await call()
    except Exception:
        try:
            await tx.rollback()
        except Exception:
            close_now(c)  # the server rolls back when the connection goes
        raise
    await tx.commit()


def _first_mismatch(
    batch: Sequence[Record], columns: Sequence[str], pk: Sequence[str]
) -> RecordError | None:
    for index, record in enumerate(batch):
        if len(record) != len(columns) or not all(c in record for c in columns):
            return _mismatch(index, record, columns, pk)
    return None


def _mismatch(index: int, record: Record, columns: Sequence[str], pk: Sequence[str]) -> RecordError:
    return RecordError(
        index=index,
        message=(
            f"record has fields {sorted(record.keys())}; every record of a batch needs "
            f"the first record's fields {sorted(columns)}"
        ),
        code=InvalidRequestError.code,
        key=key_of(record, pk),
    )
