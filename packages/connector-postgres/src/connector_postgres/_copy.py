"""COPY in and out of tables: binary COPY of records in, a table or a query's rows out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Sequence,
)
from typing import Any, Literal

from connector_core import ConnectorError, InvalidRequestError
from connector_postgres._catalog import CatalogResolver, Table
from connector_postgres._errors import is_stale_catalog
from connector_postgres._results import ExecuteResult
from connector_postgres._session import Connection, PoolSession, Session

CopyFormat = Literal["csv", "text", "binary"]
Records = Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]]
_Output = Callable[[bytes], Coroutine[Any, Any, None]]
_Start = Callable[[Connection, _Output, float | None], Awaitable[Any]]

# COPY output chunks waiting for the consumer: a slow consumer holds the COPY back.
_QUEUED_CHUNKS = 8


def known_count(records: object) -> int | None:
    """How many records a bulk call moves, when that is known before it starts."""
    return len(records) if isinstance(records, Sequence) else None


def columns_of(table: Table, columns: Sequence[str] | None) -> tuple[str, ...]:
    """``columns`` checked against ``table`` (NotFoundError naming the known columns), or
    every column of the table in order when None."""
    if columns is None:
        return table.columns
    for column in columns:
        table.column(column)
    return tuple(columns)


class BulkCopy:
    """COPY for a connector: names resolved with ``resolver`` first (an unknown table or
    column is a NotFoundError and nothing runs), each COPY bounded by
    ``bulk_deadline(rows)`` (rows: the count when known up front, else None)."""

    def __init__(
        self,
        resolver: CatalogResolver,
        bulk_deadline: Callable[[int | None], float | None],
        *,
        connector: str,
    ) -> None:
        self._resolver = resolver
        self._bulk_deadline = bulk_deadline
        self._connector = connector

    def _target(self, table: Table, columns: Sequence[str] | None) -> tuple[str, ...]:
        if not table.writable:
            raise InvalidRequestError(
                f"cannot copy into {table.stream.kind} {table.stream.qualified_name!r}",
                connector=self._connector,
            )
        return columns_of(table, columns)

    async def copy_in(
        self, session: Session, table: str, records: Records, columns: Sequence[str] | None
    ) -> int:
        """Binary COPY of ``records`` into ``table`` on ``session``; the rows copied."""
        deadline = self._bulk_deadline(known_count(records))

        async def copy(resolved: Table) -> int:
            cols = self._target(resolved, columns)
            status = await session.copy_records(
                "copy_in", resolved.schema, resolved.name, records, cols, deadline=deadline
            )
            return ExecuteResult.from_status(status).rowcount or 0

        # A stale look-up is refused before any record is read; still, only a Sequence
        # is certain to give the same records a second time.
        return await self._resolver.with_table(
            session, table, copy, columns=columns or (), rerunnable=isinstance(records, Sequence)
        )

    async def copy_out(
        self,
        pool: PoolSession,
        table: str,
        *,
        columns: Sequence[str] | None,
        format: CopyFormat,
        header: bool,
    ) -> AsyncIterator[bytes]:
        """The rows of ``table`` as COPY output chunks, on a pooled connection."""
        names = tuple(columns or ())
        resolved, cached = await self._resolver.resolve(pool, table, columns=names)
        while True:
            cols = columns_of(resolved, columns)

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
                async for chunk in self._chunks(pool, start):
                    sent = True
                    yield chunk
            except ConnectorError as error:
                if not is_stale_catalog(error):
                    raise
                self._resolver.invalidate(table)
                if sent or not cached:
                    raise
            else:
                return
            resolved, cached = await self._resolver.resolve(pool, table, columns=names, fresh=True)

    async def copy_out_query(
        self,
        pool: PoolSession,
        sql: str,
        args: Sequence[Any],
        *,
        format: CopyFormat,
        header: bool,
    ) -> AsyncIterator[bytes]:
        """The result of ``sql`` as COPY output chunks, on a pooled connection."""

        async def start(c: Connection, output: _Output, timeout: float | None) -> Any:
            return await c.copy_from_query(
                sql,
                *args,
                output=output,
                format=format,
                header=header if format == "csv" else None,
                timeout=timeout,
            )

        async for chunk in self._chunks(pool, start):
            yield chunk

    async def _chunks(self, pool: PoolSession, start: _Start) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=_QUEUED_CHUNKS)
        done = object()
        # The size of a COPY's output is not known up front; the deadline covers the
        # consumer's time too (a full queue holds the COPY back).
        deadline = self._bulk_deadline(None)

        async def output(chunk: bytes) -> None:
            await queue.put(bytes(chunk))

        async def produce() -> None:
            try:
                await pool.run(
                    "copy_out", lambda c: start(c, output, deadline), bulk_deadline=deadline
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
