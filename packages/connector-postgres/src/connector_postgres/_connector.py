"""PostgresConnector: asyncpg behind connector_core's lifecycle and operation road.

The connector is thin: its statements run on a session (``_session.py``: the pool's,
or the open transaction's of the calling task), and the parts live in modules of their
own: transactions (``_transaction.py``), COPY (``_copy.py``), writes (``_write.py``),
catalog look-ups (``_catalog.py``), reads (``_read.py``) and LISTEN (``_listen.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any, ClassVar

import asyncpg

from connector_core import (
    BaseConnector,
    Catalog,
    ConnectorError,
    ErrorCode,
    InvalidRequestError,
    NotFoundError,
    Record,
    RecordError,
    RetryPolicy,
    SchemaChange,
    Stream,
    WriteResult,
    scrub_secrets,
)
from connector_postgres._catalog import CatalogResolver, Table
from connector_postgres._codecs import use_json_codecs
from connector_postgres._config import IsolationLevel, PostgresConfig
from connector_postgres._copy import BulkCopy, CopyFormat
from connector_postgres._errors import connection_closed, translate_error
from connector_postgres._identifiers import column_list, quote_ident
from connector_postgres._keepalive import keep_alive
from connector_postgres._lease import AdvisoryLeases
from connector_postgres._listen import Listener
from connector_postgres._read import IndexHints, ReadScan, RecordReader
from connector_postgres._results import ExecuteResult
from connector_postgres._schema import add_columns_sql, check_fits, create_table_sql, split_name
from connector_postgres._session import (
    PoolSession,
    Session,
    TransactionSession,
    connect_timed_out,
)
from connector_postgres._sql import is_read_only
from connector_postgres._transaction import PostgresTransaction, Transactions
from connector_postgres._write import BatchWriter, WriteMode

try:
    __version__ = _version("connector-postgres")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

# A ping whose pooled connection was already dead gets one more attempt at once, on a
# fresh connection (see ping()).
_PING_POLICY = RetryPolicy(max_attempts=2, initial_delay=0.0, max_delay=0.0, jitter=False)


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
        self._pool = PoolSession(
            self.run, connect_timeout=config.connect_timeout, connector=self.name
        )
        self._catalog = CatalogResolver(config.schemas, config.catalog_cache_ttl)
        self._copy = BulkCopy(self._catalog, config.bulk_deadline, connector=self.name)
        self._writer = BatchWriter(
            self._catalog,
            config.bulk_deadline,
            upsert_copy_threshold=config.upsert_copy_threshold,
            scrub=self._scrub,
            connector=self.name,
        )
        self._transactions = Transactions(
            self._pool,
            batch_size=config.batch_size,
            copy_in=self._copy.copy_in,
            connector=self.name,
        )
        self._index_hints = IndexHints(self.logger)
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
        self._pool.attach(pool)

    async def _init_connection(self, connection: asyncpg.Connection) -> None:
        """Prepare each new connection (pooled or dedicated) before its first use."""
        if self.config.tcp_keepalive is not None:
            keep_alive(connection, self.config.tcp_keepalive)
        if self.config.decode_json:
            await use_json_codecs(connection)

    async def _disconnect(self) -> None:
        listeners = list(self._listeners)
        if listeners:
            await asyncio.gather(*(listener.close() for listener in listeners))
        await self._pool.close()

    async def _ping(self) -> None:
        await self._pool.on_connection(lambda c: c.fetchval("SELECT 1"))

    async def ping(self) -> float:
        """One round trip on a pooled connection; returns its duration in seconds.

        The pool replaces dead connections lazily, so right after the server dropped them
        a ping would meet one and report a healthy server as down: a ping whose
        connection was found closed is tried once more at once, on the road (a RETRY
        event, a retry in stats). Raises NotConnectedError before ``connect()``, or the
        ConnectorError that says why the server is unhealthy.
        """
        found_closed = False

        async def attempt() -> float:
            nonlocal found_closed
            try:
                return await self._timed_ping()
            except Exception as exc:
                found_closed = connection_closed(exc)
                raise

        return await self.run(
            "ping",
            attempt,
            idempotent=True,
            retry_on=lambda error: found_closed,
            retry_policy=_PING_POLICY,
        )

    def _scrub(self, text: str) -> str:
        return scrub_secrets(text, self._known_secrets())

    def _translate_error(self, exc: BaseException) -> ConnectorError | None:
        return translate_error(exc, command_timeout=self.config.command_timeout)

    def _is_connection_lost(self, error: ConnectorError) -> bool:
        # The pool heals itself: a dead connection is replaced when next acquired.
        # Re-creating the whole pool would break every other task's connection.
        return False

    # -- connections --------------------------------------------------------------------

    async def _open_dedicated_connection(self) -> asyncpg.Connection:
        """A connection outside the pool (for LISTEN), with the same settings."""
        try:
            connection: asyncpg.Connection = await asyncpg.connect(**self._connect_kwargs())
        except TimeoutError as exc:  # the driver's: see DriverTimeoutError
            raise connect_timed_out(self.config.connect_timeout) from exc
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
        return self._pool.pool

    def _session(self) -> Session:
        """Where this task's statements run: its open transaction, else the pool."""
        return self._transactions.session()

    # -- queries ------------------------------------------------------------------------

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
        return await self._session().fetch(
            "query", sql, *args, idempotent=_idempotent(sql, idempotent)
        )

    async def query_one(
        self, sql: str, *args: Any, idempotent: bool | None = None
    ) -> asyncpg.Record | None:
        """The first row of ``sql``, or None. Retries and errors as :meth:`query`."""
        return await self._session().fetchrow(
            "query_one", sql, *args, idempotent=_idempotent(sql, idempotent)
        )

    async def query_value(
        self, sql: str, *args: Any, column: int = 0, idempotent: bool | None = None
    ) -> Any:
        """One value of the first row (None when there is none). As :meth:`query`."""
        return await self._session().fetchval(
            "query_value", sql, *args, column=column, idempotent=_idempotent(sql, idempotent)
        )

    async def execute(self, sql: str, *args: Any, idempotent: bool = False) -> ExecuteResult:
        """Run a command; returns its status tag and the rows it affected.

        Not retried unless ``idempotent=True``. Without ``args`` the text may hold several
        statements (simple protocol). Inside ``async with connector.transaction()`` it
        runs on the transaction's connection. Raises ConflictError, QueryError, ...
        """
        status = await self._session().execute("execute", sql, *args, idempotent=idempotent)
        return ExecuteResult.from_status(status)

    async def execute_many(
        self, sql: str, args: Iterable[Sequence[Any]], *, idempotent: bool = False
    ) -> None:
        """Run ``sql`` once per argument tuple, pipelined and atomic (all or none).

        Not retried unless ``idempotent=True`` (then ``args`` must be re-iterable).
        Inside ``async with connector.transaction()`` it runs in that transaction.
        """
        await self._session().executemany("execute_many", sql, args, idempotent=idempotent)

    # -- transactions -------------------------------------------------------------------

    def transaction(
        self,
        *,
        isolation: IsolationLevel | str | None = None,
        readonly: bool = False,
        deferrable: bool = False,
        independent: bool = False,
    ) -> contextlib.AbstractAsyncContextManager[PostgresTransaction]:
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
        return self._transactions.transaction(
            isolation=isolation, readonly=readonly, deferrable=deferrable, independent=independent
        )

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
        async with self._transactions.cursor_session() as session:
            next_batch = await session.cursor(sql, args, size)
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
        async with self._transactions.cursor_session() as session:
            next_batch = await session.cursor(sql, args, size)
            while True:
                rows = await next_batch()
                if rows:
                    yield rows
                if len(rows) < size:
                    return

    def invalidate_catalog(self, stream: str | None = None) -> None:
        """Forget the cached catalog look-up of ``stream`` (bare or ``schema.name``), or of
        every table when None. Call it after DDL that changes a table's columns or keys
        if the next calls must see it before ``config.catalog_cache_ttl`` runs out
        (dropped tables and columns are noticed by themselves)."""
        self._catalog.invalidate(stream)

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
        return await self._copy.copy_in(self._session(), table, records, columns)

    def copy_out(
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
        return self._copy.copy_out(self._pool, table, columns=columns, format=format, header=header)

    def copy_out_query(
        self, sql: str, *args: Any, format: CopyFormat = "csv", header: bool = False
    ) -> AsyncIterator[bytes]:
        """The result of ``sql`` as COPY output chunks; see :meth:`copy_out`."""
        return self._copy.copy_out_query(self._pool, sql, args, format=format, header=header)

    # -- capabilities: discover, read, sample, write --------------------------------------

    async def discover(self) -> Catalog:
        """Tables and views of ``config.schemas``: columns with portable types and
        nullability, primary keys, foreign keys, estimated row counts (from the planner's
        statistics; None until the table is first analyzed) and a suggested cursor field
        (``updated_at`` and similar names). Raises ConnectionFailedError, ..."""
        tables = await self._catalog.tables(self._session())
        return Catalog(streams=tuple(t.stream for t in tables))

    async def stream_info(self, stream: str) -> Table:
        """The resolved table behind ``stream`` (NotFoundError listing the known ones)."""
        table, _ = await self._catalog.resolve(self._session(), stream)
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
        scan: ReadScan | None = None,
    ) -> RecordReader:
        """Records of ``stream`` in (``cursor_field``, primary key) order, as dicts.

        The query is ``WHERE (cursor, pk) > (checkpoint) ORDER BY cursor, pk``, so rows
        sharing a cursor value are neither skipped nor repeated. ``scan`` (default
        ``config.read_scan``, ``"cursor"``) says how it runs:

        * ``"cursor"``: one server-side cursor, ``batch_size`` rows per round trip, in a
          read-only REPEATABLE READ transaction of its own (or in the caller's open
          transaction): one scan and at most one sort however large the table; the
          connection is held until the reader is exhausted or closed. The first fetch
          (which runs the scan) is bounded by ``config.bulk_deadline(estimated rows)``,
          each later one by ``timeout``. When a fetch fails on a transient error after
          records were handed out, the cursor is opened again from the checkpoint
          (never inside the caller's transaction);
        * ``"keyset"``: one query with ``LIMIT batch_size`` per page, each retried on
          transient errors on its own, no transaction held between pages; without an
          index on (cursor, pk) every page sorts the table again.

        When no index starts with the cursor column (the primary key's first column
        without a cursor), a WARNING on ``connector.postgres`` says so once per table,
        with the ``CREATE INDEX`` that would help. ``since`` is:

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
            return await self._catalog.resolve(self._session(), stream, columns=wanted, fresh=fresh)

        return RecordReader(
            self._page_fetch,
            load_table,
            since=since,
            cursor_field=cursor_field,
            key_fields=key_fields,
            limit=limit,
            page_size=batch_size or self.config.batch_size,
            lag=dt.timedelta(seconds=lag) if isinstance(lag, (int, float)) else lag,
            scan=scan or self.config.read_scan,
            open_cursor=self._read_session,
            scan_deadline=self.config.bulk_deadline,
            hint=self._index_hints.check,
        )

    def _read_session(self) -> contextlib.AbstractAsyncContextManager[TransactionSession]:
        return self._transactions.cursor_session(
            isolation=IsolationLevel.REPEATABLE_READ, readonly=True
        )

    async def _page_fetch(self, sql: str, *args: Any) -> Sequence[Any]:
        return await self._session().fetch("read", sql, *args, idempotent=True)

    async def sample(self, stream: str, n: int = 10) -> list[Record]:
        """Up to ``n`` records of ``stream`` (no particular order), as dicts."""
        if n < 0:
            raise InvalidRequestError("n must be >= 0", connector=self.name)
        session = self._session()

        async def sample_of(table: Table) -> list[Record]:
            sql = f"SELECT {column_list(table.columns)} FROM {table.sql_name} LIMIT $1"  # noqa: S608
            rows = await session.fetch("sample", sql, n, idempotent=True)
            return [dict(r) for r in rows]

        return await self._catalog.with_table(session, stream, sample_of)

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
        return await self._writer.write(self._session(), stream, records, mode)

    async def ensure_stream(self, name: str, schema: Stream) -> SchemaChange:
        """Make table ``name`` (``schema.table``, or a table of the first of
        ``config.schemas``) fit ``schema``: create it from the stream's fields and primary
        key when it does not exist (types from ``FieldType``: ``bigint``, ``text``,
        ``timestamptz``, ``jsonb`` for objects and unknown types, ...), add the columns it
        lacks (``ADD COLUMN IF NOT EXISTS``, nullable) and leave the others alone.

        Raises SchemaChangeError (nothing changed) when an existing column cannot hold a
        field's type (a ``text`` column for integers, say; ``bigint`` into
        ``numeric``/``double precision`` or anything into ``jsonb`` fits), and
        InvalidRequestError for a bad name."""
        try:
            table = await self.stream_info(name)
        except NotFoundError:
            namespace, table_name = split_name(name, self.config.schemas[0])
            await self.execute(create_table_sql(namespace, table_name, schema), idempotent=True)
            self.invalidate_catalog(name)
            return SchemaChange(created=True)
        missing = check_fits(name, table.stream, schema)
        if not missing:
            return SchemaChange()
        await self.execute(add_columns_sql(table.schema, table.name, missing), idempotent=True)
        self.invalidate_catalog()
        return SchemaChange(added=tuple(f.name for f in missing))

    async def delete_keys(self, stream: str, keys: Iterable[Record]) -> WriteResult:
        """Delete the rows of ``stream`` whose primary key is one of ``keys`` (mappings
        holding the key's columns; whole records will do), in one transaction. A key
        that matches no row is not an error. A key lacking a key column is a RecordError
        (nothing is deleted then: the batch is all or nothing). Raises NotFoundError for
        an unknown table, InvalidRequestError for a table without a primary key."""
        table = await self.stream_info(stream)
        key = table.stream.primary_key
        if not key:
            raise InvalidRequestError(
                f"delete_keys(): table {table.schema}.{table.name} has no primary key",
                connector=self.name,
            )
        rows: list[tuple[Any, ...]] = []
        errors: list[RecordError] = []
        for index, record in enumerate(keys):
            absent = [k for k in key if k not in record]
            if absent:
                errors.append(
                    RecordError(
                        index=index,
                        message=f"the key lacks {', '.join(absent)}",
                        code=ErrorCode.INVALID_REQUEST,
                    )
                )
            rows.append(tuple(record.get(k) for k in key))
        if errors:
            return WriteResult(written=0, failed=len(rows), errors=tuple(errors))
        if rows:
            where = " AND ".join(f"{quote_ident(k)} = ${i}" for i, k in enumerate(key, 1))
            sql = f"DELETE FROM {table.sql_name} WHERE {where}"  # noqa: S608
            async with self.transaction() as tx:
                await tx.execute_many(sql, rows)
        return WriteResult(written=len(rows))

    # -- LISTEN / NOTIFY ------------------------------------------------------------------

    def listen(
        self, *channels: str, keepalive: float = 30.0, reconnect_timeout: float = 60.0
    ) -> Listener:
        """Notifications on ``channels`` as an async iterator (see :class:`Listener`).

        ``async with connector.listen("jobs") as listener:`` listens on entry;
        ``async for n in listener`` yields :class:`Notification` objects. It reconnects
        by itself when its connection is lost, on the connector's road (RETRY events,
        stats, jittered backoff) for up to ``reconnect_timeout`` seconds;
        ``connector.disconnect()`` closes it (its iteration then ends). Raises
        InvalidRequestError for an invalid channel name, or a ``keepalive`` or
        ``reconnect_timeout`` that is not a finite number of seconds.
        """
        if not channels:
            raise InvalidRequestError("listen() needs at least one channel", connector=self.name)
        return Listener(
            tuple(channels),
            open_connection=self._open_dedicated_connection,
            road=self.run,
            registry=self._listeners,
            ping_timeout=self.config.connect_timeout,
            keepalive=keepalive,
            reconnect_timeout=reconnect_timeout,
        )

    # -- leases -------------------------------------------------------------------------

    def leases(self, group: str, *, timeout: float = 30.0) -> AdvisoryLeases:
        """Stream leases of ``group`` as advisory locks on a session of their own (see
        :class:`AdvisoryLeases`): what ``connector_core.sync.SyncWorker`` takes to share a
        configuration's streams with workers on other machines. ``timeout`` bounds how
        long a vanished worker's leases outlive it (a killed process's go at once).

        ``async with connector.leases("orders-sync") as leases:`` opens the session on
        the connector's road with its settings (TCP keepalive too); the caller closes it
        (``disconnect()`` does not). Raises InvalidRequestError for an empty ``group`` or
        a ``timeout`` under 3 s.
        """
        return AdvisoryLeases(
            group, open_connection=self._open_dedicated_connection, road=self.run, timeout=timeout
        )

    async def notify(self, channel: str, payload: str = "") -> None:
        """Send a notification (``pg_notify``; the payload is a bind parameter). Inside
        ``async with connector.transaction()`` it is sent when that transaction commits."""
        await self._session().execute("notify", "SELECT pg_notify($1, $2)", channel, payload)


def _idempotent(sql: str, idempotent: bool | None) -> bool:
    return is_read_only(sql) if idempotent is None else idempotent
