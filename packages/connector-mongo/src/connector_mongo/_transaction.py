"""Transactions: a session per ``async with connector.transaction()`` block, in which the
calling task's operations on the connector run."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from connector_core import InvalidRequestError

Road = Callable[..., Awaitable[Any]]
StartSession = Callable[[], AsyncClientSession]


class MongoTransaction:
    """An open transaction (what ``async with connector.transaction() as tx`` gives).

    The connector's operations called by this task inside the block run in it, on its
    session (``tx.session`` for calls made on the driver directly), and are never retried.
    Tasks started inside the block are not part of it.
    """

    def __init__(self, session: AsyncClientSession) -> None:
        self.session = session
        self.aborted = False
        self._owner = asyncio.current_task()

    async def abort(self) -> None:
        """Roll back now; the block then ends without committing."""
        if not self.aborted:
            self.aborted = True
            await self.session.abort_transaction()


class Transactions:
    """The open transaction of each task (a context variable per connector)."""

    def __init__(
        self, road: Road, start_session: Callable[[], Awaitable[AsyncClientSession]]
    ) -> None:
        self._road = road
        self._start_session = start_session
        self._current: contextvars.ContextVar[MongoTransaction | None] = contextvars.ContextVar(
            "connector_mongo_transaction", default=None
        )

    def session(self) -> AsyncClientSession | None:
        """The calling task's transaction session, or None outside a transaction."""
        tx = self._current.get()
        # Tasks started inside the block inherit its context, but not the transaction:
        # a session serves one task at a time.
        if tx is None or tx._owner is not asyncio.current_task():
            return None
        return tx.session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MongoTransaction]:
        if self.session() is not None:
            raise InvalidRequestError(
                "a transaction is already open in this task: MongoDB does not nest them",
                connector="mongo",
            )

        async def begin() -> AsyncClientSession:
            session = await self._start_session()
            try:
                await session.start_transaction()
            except BaseException:
                await session.end_session()
                raise
            return session

        session = await self._road("begin_transaction", begin, idempotent=True)
        tx = MongoTransaction(session)
        token = self._current.set(tx)
        try:
            try:
                yield tx
            except BaseException:
                if not tx.aborted:
                    tx.aborted = True
                    await self._road("abort_transaction", session.abort_transaction, retry=False)
                raise
            if not tx.aborted:
                # commitTransaction may be sent again: the server answers the same.
                await self._road("commit_transaction", session.commit_transaction, idempotent=True)
        finally:
            self._current.reset(token)
            await session.end_session()
