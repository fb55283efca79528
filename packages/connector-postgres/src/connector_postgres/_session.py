"""Sessions: where statements run, over the pool or over one transaction's connection.

As asyncpg's ``Pool`` delegates its query methods to a ``Connection``, the connector
delegates every statement to a :class:`Session`: the :class:`PoolSession` borrows a
pooled connection per call and runs it on the connector's road (retried when the call is
idempotent); a :class:`TransactionSession` runs on its transaction's connection and is
never retried. Both are ``run(operation, call)`` where ``call(connection)`` is the
asyncpg call; the query helpers are that one method with the call filled in.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from connector_core import (
    USE_DEFAULT,
    ConnectorError,
    InvalidRequestError,
    NotConnectedError,
    RetryPolicy,
    UseDefault,
)
from connector_postgres._errors import DriverTimeoutError

T = TypeVar("T")
Connection = asyncpg.Connection | PoolConnectionProxy
NextBatch = Callable[[], Awaitable[list[asyncpg.Record]]]

logger = logging.getLogger("connector.postgres")


class Road(Protocol):
    """The connector's operation road (``BaseConnector.run``), passed in as a callable."""

    def __call__(
        self,
        operation: str,
        fn: Callable[[], Awaitable[T]],
        *,
        idempotent: bool = ...,
        timeout: float | UseDefault | None = ...,
        retry: bool = ...,
        retry_on: Callable[[ConnectorError], bool] | None = ...,
        retry_policy: RetryPolicy | None = ...,
    ) -> Awaitable[T]: ...


def is_open(connection: Connection) -> bool:
    """Whether the connection can still run statements (False once closed, or once a
    pool has taken it back after it was closed)."""
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:  # a pool proxy detached from its closed connection
        return False


def close_now(connection: Connection) -> None:
    """Close the connection without a goodbye (the server rolls back what was open, once
    it notices: a running statement is not stopped by this)."""
    if is_open(connection):
        connection.terminate()


class Interruption:
    """Remembers that a statement on a connection was cut short by a timeout or a
    cancellation: asyncpg has then asked the server to cancel it, and the connection must
    not be used again until the server has answered (see :meth:`PoolSession.release_later`)."""

    __slots__ = ("happened",)

    def __init__(self) -> None:
        self.happened = False

    def mark(self) -> None:
        self.happened = True


async def guarded(
    call: Callable[[], Awaitable[T]],
    interruption: Interruption,
    bulk_deadline: float | None = None,
) -> T:
    """Await ``call()``, recording a timeout or cancellation in ``interruption``.

    A TimeoutError out of ``call()`` is the driver's own deadline (the operation's
    timeout arrives here as a CancelledError): it leaves as a DriverTimeoutError, so
    that it is translated as such and never as the operation's timeout. It names
    ``bulk_deadline`` when the call is a bulk one (the driver was given that deadline
    instead of ``command_timeout``)."""
    try:
        return await call()
    except asyncio.CancelledError:
        interruption.mark()
        raise
    except TimeoutError as exc:
        interruption.mark()
        if isinstance(exc, DriverTimeoutError):
            raise
        message = None
        if bulk_deadline is not None:
            message = f"bulk statement did not finish within its deadline of {bulk_deadline}s"
        raise DriverTimeoutError(message) from exc


class Session(ABC):
    """Where statements run. ``run(operation, call)`` awaits ``call(connection)`` on the
    connector's road under the name ``operation``; ``bulk_deadline`` is the deadline a
    bulk call gave the driver, which then bounds the operation instead of ``timeout``.
    The helpers are the asyncpg calls every caller makes, with ``args`` bound as $1,
    $2, ... Raises the road's typed errors (QueryError, ConnectorTimeoutError, ...).

    ``run`` and the helpers return the road's awaitable rather than awaiting it in a
    coroutine of their own: every query pays for the session layer, so it adds no
    coroutine frame (see docs/decisions/0061)."""

    in_transaction: ClassVar[bool]
    """Whether statements of this session see (and are part of) an open transaction."""

    @abstractmethod
    def run(
        self,
        operation: str,
        call: Callable[[Connection], Awaitable[T]],
        *,
        idempotent: bool = False,
        bulk_deadline: float | None = None,
    ) -> Awaitable[T]:
        """``call(connection)`` on the road; retried only where the session allows it."""

    def fetch(
        self, operation: str, sql: str, *args: Any, idempotent: bool = False
    ) -> Awaitable[list[asyncpg.Record]]:
        return self.run(operation, lambda c: c.fetch(sql, *args), idempotent=idempotent)

    def fetchrow(
        self, operation: str, sql: str, *args: Any, idempotent: bool = False
    ) -> Awaitable[asyncpg.Record | None]:
        return self.run(operation, lambda c: c.fetchrow(sql, *args), idempotent=idempotent)

    def fetchval(
        self, operation: str, sql: str, *args: Any, column: int = 0, idempotent: bool = False
    ) -> Awaitable[Any]:
        return self.run(
            operation, lambda c: c.fetchval(sql, *args, column=column), idempotent=idempotent
        )

    def execute(
        self, operation: str, sql: str, *args: Any, idempotent: bool = False
    ) -> Awaitable[str]:
        """The command's status tag (``"INSERT 0 3"``)."""
        return self.run(operation, lambda c: c.execute(sql, *args), idempotent=idempotent)

    def executemany(
        self,
        operation: str,
        sql: str,
        args: Iterable[Sequence[Any]],
        *,
        idempotent: bool = False,
    ) -> Awaitable[None]:
        return self.run(operation, lambda c: c.executemany(sql, args), idempotent=idempotent)

    async def copy_records(
        self,
        operation: str,
        schema: str,
        table: str,
        records: Any,
        columns: Sequence[str],
        *,
        deadline: float | None,
    ) -> str:
        """Binary COPY of ``records`` (tuples, an iterable or async iterable) into
        ``schema.table``, bounded by ``deadline`` (a bulk deadline); never retried, since
        only a sequence could give the same records twice. Returns the status tag."""

        async def copy(c: Connection) -> str:
            status: str = await c.copy_records_to_table(
                table, records=records, columns=columns, schema_name=schema, timeout=deadline
            )
            return status

        return await self.run(operation, copy, bulk_deadline=deadline)


class PoolSession(Session):
    """Statements on pooled connections, one borrowed for each call (each attempt, when
    the road retries it). A call cut short by a timeout or a cancellation leaves its
    connection to :meth:`release_later`, so nobody waits for the server to answer the
    cancel request. Idempotent calls are retried on transient errors."""

    in_transaction: ClassVar[bool] = False

    def __init__(self, road: Road, *, connect_timeout: float, connector: str) -> None:
        self.road = road
        self._connect_timeout = connect_timeout
        self._connector = connector
        self._pool: asyncpg.Pool | None = None
        self._background: set[asyncio.Task[None]] = set()

    # -- the pool -------------------------------------------------------------------------

    def attach(self, pool: asyncpg.Pool) -> None:
        """Run on ``pool`` from now on (after ``connect()`` made it)."""
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool; NotConnectedError when there is none."""
        pool = self._pool
        if pool is None:
            raise NotConnectedError(
                "not connected: call connect() or use 'async with' first",
                connector=self._connector,
            )
        return pool

    async def close(self) -> None:
        """Wait (boundedly) for interrupted connections on their way back, then close the
        pool; one that does not close within ``connect_timeout`` is terminated."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if self._background:
            await asyncio.wait(set(self._background), timeout=self._connect_timeout)
        try:
            # close() waits for borrowed connections; do not wait forever for a leak.
            await asyncio.wait_for(pool.close(), self._connect_timeout)
        except (Exception, TimeoutError):
            pool.terminate()

    # -- borrowing connections --------------------------------------------------------------

    async def acquire(self, pool: asyncpg.Pool) -> PoolConnectionProxy:
        """A connection of ``pool``; opening a new one that runs out of ``connect_timeout``
        is a (transient) failed connection, as it is for ``connect()``."""
        try:
            connection: PoolConnectionProxy = await pool.acquire()
        except TimeoutError as exc:  # the driver's: see DriverTimeoutError
            raise connect_timed_out(self._connect_timeout) from exc
        return connection

    async def release(self, pool: asyncpg.Pool, connection: PoolConnectionProxy) -> None:
        """Give ``connection`` back to ``pool`` (the pool it came from, even after a
        disconnect); its reset round trip may take ``connect_timeout``, after which asyncpg
        closes it instead (the pool opens a new one when needed)."""
        try:
            await pool.release(connection, timeout=self._connect_timeout)
        except Exception as exc:  # asyncpg has already terminated the connection
            logger.debug("releasing a connection failed: %s", type(exc).__name__)

    def release_later(
        self, pool: asyncpg.Pool, connection: PoolConnectionProxy, tx: Transaction | None
    ) -> None:
        """Give back a connection whose statement was interrupted, without making the
        caller wait: asyncpg has sent the server a cancel request, and the connection is
        usable again once the server answers it, perhaps over a slow link. In the
        background: wait for that (bounded by ``connect_timeout``), roll ``tx`` back,
        release; if it takes too long, close the connection instead."""

        async def finish() -> None:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    if tx is not None and is_open(connection):
                        await tx.rollback()
                    await pool.release(connection)
            except (Exception, asyncio.CancelledError) as exc:
                logger.debug("closing an interrupted connection (%s)", type(exc).__name__)
                close_now(connection)
                await self.release(pool, connection)

        task = asyncio.get_running_loop().create_task(finish())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def on_connection(
        self, call: Callable[[Connection], Awaitable[T]], *, bulk_deadline: float | None = None
    ) -> T:
        """``call`` on a pooled connection, off the road (the road calls this once per
        attempt; ``ping`` calls it from inside its own operation)."""
        pool = self.pool
        connection = await self.acquire(pool)
        interruption = Interruption()
        try:
            return await guarded(lambda: call(connection), interruption, bulk_deadline)
        finally:
            if interruption.happened:
                self.release_later(pool, connection, None)
            else:
                await self.release(pool, connection)

    def run(
        self,
        operation: str,
        call: Callable[[Connection], Awaitable[T]],
        *,
        idempotent: bool = False,
        bulk_deadline: float | None = None,
    ) -> Awaitable[T]:
        if bulk_deadline is None:
            return self.road(operation, lambda: self.on_connection(call), idempotent=idempotent)
        return self.road(
            operation,
            lambda: self.on_connection(call, bulk_deadline=bulk_deadline),
            idempotent=idempotent,
            timeout=bulk_deadline,
        )


class TransactionSession(Session):
    """Statements on the connection of one transaction block (or savepoint). Never
    retried: a retry could apply a statement twice or outside the transaction. Refuses
    use once its block has ended, or once a statement of the transaction was cut short
    (the transaction is then being rolled back). Operations are named
    ``transaction.<operation>`` on the road."""

    in_transaction: ClassVar[bool] = True

    def __init__(
        self,
        road: Road,
        connection: Connection,
        interruption: Interruption,
        *,
        connector: str,
    ) -> None:
        self.road = road
        self.connection = connection
        self.interruption = interruption
        self.connector = connector
        self.active = True
        # True for a cursor's own transaction (cursor_session), which nothing else uses:
        # a reader may then open another one after a failure.
        self.owned = False

    def end(self) -> None:
        """The block is over: every later call raises InvalidRequestError."""
        self.active = False

    def check(self, operation: str) -> None:
        """InvalidRequestError unless the session can run statements."""
        if not self.active:
            raise InvalidRequestError(
                f"{operation}: the transaction is finished; open a new one",
                connector=self.connector,
            )
        if self.interruption.happened:
            raise InvalidRequestError(
                f"{operation}: an earlier statement of this transaction timed out or was "
                "cancelled, so the transaction is being rolled back; open a new one",
                connector=self.connector,
            )

    def run(
        self,
        operation: str,
        call: Callable[[Connection], Awaitable[T]],
        *,
        idempotent: bool = False,
        bulk_deadline: float | None = None,
    ) -> Awaitable[T]:
        self.check(operation)
        connection, interruption = self.connection, self.interruption

        async def attempt() -> T:
            return await guarded(lambda: call(connection), interruption, bulk_deadline)

        name = f"transaction.{operation}"
        if bulk_deadline is None:
            return self.road(name, attempt, retry=False)
        return self.road(name, attempt, retry=False, timeout=bulk_deadline)

    async def cursor(
        self,
        sql: str,
        args: Sequence[Any],
        batch_size: int,
        *,
        operation: str = "stream",
        first_fetch_timeout: float | UseDefault | None = USE_DEFAULT,
    ) -> NextBatch:
        """Open a server-side cursor (a portal) for ``sql``; returns a function that
        fetches its next ``batch_size`` rows (fewer means the cursor is exhausted). Never
        retried. Raises InvalidRequestError for a ``batch_size`` below 1.

        The round trips are ``<operation>.open`` and ``<operation>.fetch`` on the road,
        each bounded by the operation timeout; the first fetch, which runs the query (a
        sort of the whole result, when no index gives the order), by
        ``first_fetch_timeout`` instead when it is given.

        The callers loop over batches in their own (single) generator: a row-by-row
        iterator layered over a batch generator would cost an extra generator step per row.
        """
        if batch_size < 1:
            raise InvalidRequestError("batch_size must be >= 1", connector=self.connector)
        self.check(operation)
        connection, interruption, road = self.connection, self.interruption, self.road

        async def open_it() -> Any:
            return await guarded(lambda: connection.cursor(sql, *args), interruption)

        cursor = await road(f"{operation}.open", open_it, retry=False)
        fetch_name = f"{operation}.fetch"
        deadline = [first_fetch_timeout]

        async def fetch() -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await guarded(
                lambda: cursor.fetch(batch_size), interruption
            )
            return rows

        async def next_batch() -> list[asyncpg.Record]:
            timeout, deadline[0] = deadline[0], USE_DEFAULT
            rows: list[asyncpg.Record] = await road(fetch_name, fetch, retry=False, timeout=timeout)
            return rows

        return next_batch


def connect_timed_out(connect_timeout: float) -> DriverTimeoutError:
    """The driver's timeout while opening a connection, named as ``connect_timeout``."""
    return DriverTimeoutError(
        f"opening a connection timed out after {connect_timeout}s (connect_timeout)",
        connecting=True,
    )
