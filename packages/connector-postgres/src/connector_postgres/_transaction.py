"""PostgresTransaction: statements that run on one connection inside one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from connector_core import ConnectorError, InvalidRequestError
from connector_postgres._errors import DriverTimeoutError
from connector_postgres._results import ExecuteResult

if TYPE_CHECKING:
    from connector_postgres._connector import PostgresConnector

T = TypeVar("T")
Connection = asyncpg.Connection | PoolConnectionProxy

# The transactions open in this context: (connector, task, innermost block) for each
# connector with one. A task started inside a block copies the context but is another
# task, so it does not join the transaction (one connection runs one statement at once).
_Binding = tuple["PostgresConnector", "asyncio.Task[Any] | None", "PostgresTransaction"]
_CURRENT: contextvars.ContextVar[tuple[_Binding, ...]] = contextvars.ContextVar(
    "connector_postgres_transaction", default=()
)


def current_transaction(connector: PostgresConnector) -> PostgresTransaction | None:
    """The innermost transaction block of ``connector`` open in this task, if any."""
    bindings = _CURRENT.get()
    if not bindings:
        return None
    task = asyncio.current_task()
    for owner, owner_task, tx in reversed(bindings):
        if owner is connector and owner_task is task and tx._active:
            return tx
    return None


@contextlib.contextmanager
def bound(connector: PostgresConnector, tx: PostgresTransaction) -> Iterator[None]:
    """Make ``tx`` the current transaction of ``connector`` in this task for the block."""
    bindings = tuple(b for b in _CURRENT.get() if b[0] is not connector)
    token = _CURRENT.set((*bindings, (connector, asyncio.current_task(), tx)))
    try:
        yield
    finally:
        # ValueError: closed from another context (a generator finalised late).
        with contextlib.suppress(ValueError):
            _CURRENT.reset(token)


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
    not be used again until the server has answered (see ``PostgresConnector``)."""

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


async def open_cursor(
    connector: PostgresConnector,
    connection: Connection,
    interruption: Interruption,
    sql: str,
    args: Sequence[Any],
    batch_size: int,
) -> Callable[[], Awaitable[list[asyncpg.Record]]]:
    """Open a server-side cursor (a portal) on ``connection``, which must be inside a
    transaction; returns a function that fetches its next ``batch_size`` rows (fewer
    than ``batch_size`` means the cursor is exhausted). Never retried.

    The callers loop over batches in their own (single) generator: a row-by-row
    iterator layered over a batch generator would cost an extra generator step per row.
    """
    if batch_size < 1:
        raise InvalidRequestError("batch_size must be >= 1", connector=connector.name)

    async def open_it() -> Any:
        return await guarded(lambda: connection.cursor(sql, *args), interruption)

    cursor = await connector.run("stream.open", open_it, retry=False)

    async def fetch() -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await guarded(lambda: cursor.fetch(batch_size), interruption)
        return rows

    async def next_batch() -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await connector.run("stream.fetch", fetch, retry=False)
        return rows

    return next_batch


class PostgresTransaction:
    """A transaction in progress, from ``PostgresConnector.transaction()``.

    Its methods run on the transaction's own connection and are never retried (a
    retry could apply a statement twice or outside the transaction). ``transaction()``
    (or the connector's ``transaction()`` inside this block, in the same task) opens a
    nested block as a SAVEPOINT. While the block is open, the connector's own query,
    execute, stream, copy_in, write, read and sample calls from the same task run here
    too. After the ``async with`` block ends, every method raises InvalidRequestError.
    """

    def __init__(
        self,
        connector: PostgresConnector,
        connection: Connection,
        interruption: Interruption,
        *,
        depth: int = 0,
    ) -> None:
        self._connector = connector
        self._connection = connection
        self._interruption = interruption
        self._depth = depth
        self._active = True

    @property
    def depth(self) -> int:
        """0 for the outer transaction, 1 for a savepoint inside it, and so on."""
        return self._depth

    @property
    def is_active(self) -> bool:
        return self._active

    async def _run(
        self,
        operation: str,
        call: Callable[[], Awaitable[T]],
        *,
        bulk_deadline: float | None = None,
    ) -> T:
        """``call()`` on the road, never retried; a bulk call runs with its
        ``bulk_deadline`` instead of the operation timeout."""
        if not self._active:
            raise InvalidRequestError(
                f"{operation}: the transaction is finished; open a new one",
                connector=self._connector.name,
            )
        if self._interruption.happened:
            raise InvalidRequestError(
                f"{operation}: an earlier statement of this transaction timed out or was "
                "cancelled, so the transaction is being rolled back; open a new one",
                connector=self._connector.name,
            )
        interruption = self._interruption

        async def attempt() -> T:
            return await guarded(call, interruption, bulk_deadline)

        name = f"transaction.{operation}"
        if bulk_deadline is None:
            return await self._connector.run(name, attempt, retry=False)
        return await self._connector.run(name, attempt, retry=False, timeout=bulk_deadline)

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of ``sql`` with ``args`` bound as $1, $2, ... Raises QueryError and friends."""
        rows: list[asyncpg.Record] = await self._run(
            "query", lambda: self._connection.fetch(sql, *args)
        )
        return rows

    async def query_one(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row, or None."""
        row: asyncpg.Record | None = await self._run(
            "query_one", lambda: self._connection.fetchrow(sql, *args)
        )
        return row

    async def query_value(self, sql: str, *args: Any, column: int = 0) -> Any:
        """One value of the first row (None when there is no row)."""
        return await self._run(
            "query_value", lambda: self._connection.fetchval(sql, *args, column=column)
        )

    async def execute(self, sql: str, *args: Any) -> ExecuteResult:
        """Run a command; returns its status tag and rows affected."""
        status: str = await self._run("execute", lambda: self._connection.execute(sql, *args))
        return ExecuteResult.from_status(status)

    async def execute_many(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` once per argument tuple (pipelined; all or nothing)."""
        await self._run("execute_many", lambda: self._connection.executemany(sql, args))

    def _cursor_args(self, batch_size: int | None) -> tuple[int, Interruption]:
        if not self._active:
            raise InvalidRequestError(
                "stream: the transaction is finished; open a new one",
                connector=self._connector.name,
            )
        return batch_size or self._connector.config.batch_size, self._interruption

    async def stream(
        self, sql: str, *args: Any, batch_size: int | None = None
    ) -> AsyncIterator[asyncpg.Record]:
        """Rows of ``sql`` through a server-side cursor inside this transaction (see
        :meth:`PostgresConnector.stream`). Raises InvalidRequestError once the block ended."""
        size, interruption = self._cursor_args(batch_size)
        next_batch = await open_cursor(
            self._connector, self._connection, interruption, sql, args, size
        )
        while True:
            rows = await next_batch()
            for row in rows:
                yield row
            if len(rows) < size:
                return

    async def stream_batches(
        self, sql: str, *args: Any, batch_size: int | None = None
    ) -> AsyncIterator[list[asyncpg.Record]]:
        """Lists of up to ``batch_size`` rows of ``sql`` through a server-side cursor inside
        this transaction (see :meth:`PostgresConnector.stream_batches`)."""
        size, interruption = self._cursor_args(batch_size)
        next_batch = await open_cursor(
            self._connector, self._connection, interruption, sql, args, size
        )
        while True:
            rows = await next_batch()
            if rows:
                yield rows
            if len(rows) < size:
                return

    async def copy_in(
        self,
        table: str,
        records: Iterable[Sequence[Any]],
        *,
        columns: Sequence[str] | None = None,
    ) -> int:
        """Binary COPY of ``records`` into ``table`` inside this transaction; returns the
        row count. See :meth:`PostgresConnector.copy_in`."""
        return await self._connector._copy_in_on(self, self._connection, table, records, columns)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        """A nested block as a SAVEPOINT: an exception inside rolls back to the savepoint
        only. A timeout or cancellation inside ends the whole transaction (rolled back)."""
        if not self._active:
            raise InvalidRequestError("the transaction is finished", connector="postgres")
        savepoint = self._connection.transaction()
        await self._run("savepoint", savepoint.start)
        inner = PostgresTransaction(
            self._connector, self._connection, self._interruption, depth=self._depth + 1
        )
        try:
            with bound(self._connector, inner):
                yield inner
        except BaseException as exc:
            inner._active = False
            if isinstance(exc, asyncio.CancelledError):
                self._interruption.mark()
            if not self._interruption.happened:
                with contextlib.suppress(ConnectorError):
                    await self._run("rollback_to_savepoint", savepoint.rollback)
            raise
        else:
            inner._active = False
            await self._run("release_savepoint", savepoint.commit)
