"""Transactions: the public handle, begin/commit/rollback and savepoints, and which
transaction block each task is in."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from connector_core import ConnectorError, InvalidRequestError
from connector_postgres._config import IsolationLevel
from connector_postgres._results import ExecuteResult
from connector_postgres._session import (
    Interruption,
    PoolSession,
    Session,
    TransactionSession,
    close_now,
    guarded,
    is_open,
)

logger = logging.getLogger("connector.postgres")

Records = Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]]
CopyIn = Callable[[Session, str, Records, Sequence[str] | None], Awaitable[int]]
"""``copy_in(session, table, records, columns)``: a binary COPY on ``session``."""

# The transaction blocks open in this context: (owner, task, innermost block, its
# session) for each owner with one. A task started inside a block copies the context but
# is another task, so it does not join the transaction (one connection runs one
# statement at once).
_Binding = tuple[
    "Transactions", "asyncio.Task[Any] | None", "PostgresTransaction", TransactionSession
]
_CURRENT: contextvars.ContextVar[tuple[_Binding, ...]] = contextvars.ContextVar(
    "connector_postgres_transaction", default=()
)


@contextlib.contextmanager
def _bound(
    owner: Transactions, tx: PostgresTransaction, session: TransactionSession
) -> Iterator[None]:
    """Make ``tx`` the current transaction of ``owner`` in this task for the block."""
    bindings = tuple(b for b in _CURRENT.get() if b[0] is not owner)
    token = _CURRENT.set((*bindings, (owner, asyncio.current_task(), tx, session)))
    try:
        yield
    finally:
        # ValueError: closed from another context (a generator finalised late).
        with contextlib.suppress(ValueError):
            _CURRENT.reset(token)


class PostgresTransaction:
    """A transaction in progress, from ``PostgresConnector.transaction()``.

    Its methods run on the transaction's own connection and are never retried (a
    retry could apply a statement twice or outside the transaction). ``transaction()``
    (or the connector's ``transaction()`` inside this block, in the same task) opens a
    nested block as a SAVEPOINT. While the block is open, the connector's own query,
    execute, stream, copy_in, write, read and sample calls from the same task run here
    too. After the ``async with`` block ends, every method raises InvalidRequestError.
    """

    def __init__(self, session: TransactionSession, owner: Transactions, *, depth: int = 0) -> None:
        self._session = session
        self._owner = owner
        self._depth = depth

    @property
    def depth(self) -> int:
        """0 for the outer transaction, 1 for a savepoint inside it, and so on."""
        return self._depth

    @property
    def is_active(self) -> bool:
        return self._session.active

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of ``sql`` with ``args`` bound as $1, $2, ... Raises QueryError and friends."""
        return await self._session.fetch("query", sql, *args)

    async def query_one(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row, or None."""
        return await self._session.fetchrow("query_one", sql, *args)

    async def query_value(self, sql: str, *args: Any, column: int = 0) -> Any:
        """One value of the first row (None when there is no row)."""
        return await self._session.fetchval("query_value", sql, *args, column=column)

    async def execute(self, sql: str, *args: Any) -> ExecuteResult:
        """Run a command; returns its status tag and rows affected."""
        return ExecuteResult.from_status(await self._session.execute("execute", sql, *args))

    async def execute_many(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` once per argument tuple (pipelined; all or nothing)."""
        await self._session.executemany("execute_many", sql, args)

    async def stream(
        self, sql: str, *args: Any, batch_size: int | None = None
    ) -> AsyncIterator[asyncpg.Record]:
        """Rows of ``sql`` through a server-side cursor inside this transaction (see
        :meth:`PostgresConnector.stream`). Raises InvalidRequestError once the block ended."""
        size = batch_size or self._owner.batch_size
        next_batch = await self._session.cursor(sql, args, size)
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
        size = batch_size or self._owner.batch_size
        next_batch = await self._session.cursor(sql, args, size)
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
        return await self._owner.copy_in(self._session, table, records, columns)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        """A nested block as a SAVEPOINT: an exception inside rolls back to the savepoint
        only. A timeout or cancellation inside ends the whole transaction (rolled back)."""
        session = self._session
        if not session.active:
            raise InvalidRequestError("the transaction is finished", connector=session.connector)
        savepoint = session.connection.transaction()
        await session.run("savepoint", lambda _: savepoint.start())
        inner_session = TransactionSession(
            session.road, session.connection, session.interruption, connector=session.connector
        )
        inner = PostgresTransaction(inner_session, self._owner, depth=self._depth + 1)
        interruption = session.interruption
        try:
            with _bound(self._owner, inner, inner_session):
                yield inner
        except BaseException as exc:
            inner_session.end()
            if isinstance(exc, asyncio.CancelledError):
                interruption.mark()
            if not interruption.happened:
                with contextlib.suppress(ConnectorError):
                    await session.run("rollback_to_savepoint", lambda _: savepoint.rollback())
            raise
        else:
            inner_session.end()
            await session.run("release_savepoint", lambda _: savepoint.commit())


class Transactions:
    """A connector's transactions: opens them on its pool session, and keys the binding
    of each task to its innermost open block (so that the connector's own calls inside a
    block run in it). ``copy_in`` and ``batch_size`` are what the handles need."""

    def __init__(
        self, pool_session: PoolSession, *, batch_size: int, copy_in: CopyIn, connector: str
    ) -> None:
        self.pool_session = pool_session
        self.batch_size = batch_size
        self.copy_in = copy_in
        self._connector = connector

    def _binding(self) -> _Binding | None:
        bindings = _CURRENT.get()
        if not bindings:
            return None
        task = asyncio.current_task()
        for binding in reversed(bindings):
            owner, owner_task, tx, _ = binding
            if owner is self and owner_task is task and tx.is_active:
                return binding
        return None

    def current(self) -> PostgresTransaction | None:
        """The innermost transaction block open in this task, if any."""
        binding = self._binding()
        return None if binding is None else binding[2]

    def session(self) -> Session:
        """Where this task's statements run: its open block's session, else the pool's."""
        if not _CURRENT.get():  # no block open in this context: every call but a few
            return self.pool_session
        binding = self._binding()
        return self.pool_session if binding is None else binding[3]

    @contextlib.asynccontextmanager
    async def transaction(
        self,
        *,
        isolation: IsolationLevel | str | None,
        readonly: bool,
        deferrable: bool,
        independent: bool,
    ) -> AsyncIterator[PostgresTransaction]:
        """A block bound to this task (see ``PostgresConnector.transaction``): a SAVEPOINT
        in the task's open block unless ``independent``, else a new transaction."""
        current = None if independent else self.current()
        if current is not None:
            if isolation is not None or readonly or deferrable:
                raise InvalidRequestError(
                    "a nested transaction is a savepoint: isolation, readonly and "
                    "deferrable can only be set on the outermost transaction",
                    connector=self._connector,
                )
            async with current.transaction() as savepoint:
                yield savepoint
            return
        async with self._block(isolation, readonly, deferrable, bind=True) as (handle, _):
            yield handle

    @contextlib.asynccontextmanager
    async def cursor_session(
        self, *, isolation: IsolationLevel | None = None, readonly: bool = False
    ) -> AsyncIterator[TransactionSession]:
        """Where a server-side cursor runs: the task's open block, else a transaction of
        its own (``isolation``, ``readonly``) that is not bound to the task (a generator
        shares its caller's context, and the caller's code between rows is not part of
        that transaction). ``session.owned`` says which: True for a transaction of its own."""
        binding = self._binding()
        if binding is not None:
            yield binding[3]
            return
        async with self._block(isolation, readonly, False, bind=False) as (_, session):
            session.owned = True
            yield session

    @contextlib.asynccontextmanager
    async def _block(
        self,
        isolation: IsolationLevel | str | None,
        readonly: bool,
        deferrable: bool,
        *,
        bind: bool,
    ) -> AsyncIterator[tuple[PostgresTransaction, TransactionSession]]:
        level = IsolationLevel(isolation).value if isolation is not None else None
        if deferrable and not (readonly and level == IsolationLevel.SERIALIZABLE.value):
            raise InvalidRequestError(
                "deferrable=True needs readonly=True and isolation='serializable'",
                connector=self._connector,
            )
        sessions = self.pool_session
        pool = sessions.pool
        road = sessions.road

        async def begin() -> tuple[PoolConnectionProxy, Transaction, Interruption]:
            connection = await sessions.acquire(pool)
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
                    sessions.release_later(pool, connection, None)
                else:
                    await sessions.release(pool, connection)
                raise
            return connection, tx, interruption

        # Nothing has run yet: beginning is retried on transient errors.
        connection, tx, interruption = await road("transaction.begin", begin, idempotent=True)
        session = TransactionSession(road, connection, interruption, connector=self._connector)
        handle = PostgresTransaction(session, self)
        released = False
        try:
            try:
                if bind:
                    with _bound(self, handle, session):
                        yield handle, session
                else:
                    yield handle, session
            except BaseException as exc:
                session.end()
                if isinstance(exc, asyncio.CancelledError):
                    interruption.mark()
                if interruption.happened:
                    # The server is still busy with (or cancelling) a statement: roll
                    # back in the background instead of waiting here.
                    sessions.release_later(pool, connection, tx)
                    released = True
                elif is_open(connection):
                    try:
                        await road(
                            "transaction.rollback",
                            lambda: guarded(tx.rollback, interruption),
                            retry=False,
                        )
                    except ConnectorError as error:
                        logger.warning("rollback failed (%s); closing the connection", error)
                        close_now(connection)
                raise
            else:
                session.end()
                if interruption.happened:
                    sessions.release_later(pool, connection, tx)
                    released = True
                    raise InvalidRequestError(
                        "a statement of this transaction timed out or was cancelled, so it "
                        "was rolled back, not committed",
                        connector=self._connector,
                    )
                await road(
                    "transaction.commit", lambda: guarded(tx.commit, interruption), retry=False
                )
        finally:
            if not released:
                if interruption.happened:
                    sessions.release_later(pool, connection, None)
                else:
                    # Outside any operation's deadline: bounded here (the pool resets the
                    # connection with a round trip, which a dead link would never answer).
                    await sessions.release(pool, connection)
