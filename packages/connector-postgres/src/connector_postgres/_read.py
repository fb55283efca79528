"""Incremental reads in (cursor, primary key) order, from a checkpoint.

``scan="cursor"`` (the default): one query ``WHERE (cursor, pk...) > (checkpoint) ORDER BY
cursor, pk...`` read through one server-side cursor in a read-only REPEATABLE READ
transaction: one scan, at most one sort, whatever the size. ``scan="keyset"``: the same
query with ``LIMIT n`` once per page, each page a statement of its own (no transaction
held between pages; without an index on (cursor, pk) every page sorts the table again).
Either way rows that share a cursor value are neither skipped nor repeated, and
:class:`ReadCheckpoint` carries the position from one run to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal, Protocol

from connector_core import (
    USE_DEFAULT,
    Checkpoint,
    ConnectorError,
    FieldType,
    InvalidRequestError,
    Record,
    UseDefault,
)
from connector_postgres._catalog import Table
from connector_postgres._errors import is_stale_catalog
from connector_postgres._identifiers import column_list, quote_ident

FetchPage = Callable[..., Awaitable[Sequence[Any]]]
NextBatch = Callable[[], Awaitable[Sequence[Any]]]


class CursorSession(Protocol):
    """Where a read's server-side cursor runs (a TransactionSession): ``owned`` is True
    for a transaction of its own, False inside the caller's transaction."""

    owned: bool

    def cursor(
        self,
        sql: str,
        args: Sequence[Any],
        batch_size: int,
        *,
        operation: str = ...,
        first_fetch_timeout: float | UseDefault | None = ...,
    ) -> Awaitable[NextBatch]: ...


OpenCursor = Callable[[], contextlib.AbstractAsyncContextManager[CursorSession]]
"""A session for the read's cursor, for the ``async with`` block."""
ScanDeadline = Callable[[int | None], float | None]
"""The deadline of the cursor's first fetch (the scan, a sort included) for a table of
that many rows (None: not known): ``PostgresConfig.bulk_deadline``."""
IndexHint = Callable[[Table, Sequence[str]], None]
"""``hint(table, order)``: told the table and the ORDER BY columns of every read."""
ReadScan = Literal["cursor", "keyset"]
# Relations that can carry their own indexes: tables, partitioned tables, materialized views.
_INDEXABLE_KINDS = frozenset({"r", "p", "m"})

# Columns whose values a checkpoint may carry as text after a trip through JSON (a
# timestamptz as an ISO string, a numeric or uuid as a string): such a value is bound
# as text and cast to the column's type in SQL. Text columns take text as it is.
_TEXT_TYPES = frozenset({FieldType.STRING})
_LAG_TYPES = frozenset({FieldType.DATETIME, FieldType.DATE})


class ReadCheckpoint(Checkpoint):
    """A position in a stream: after the row whose cursor is ``cursor`` and whose key
    (primary key values, in order) is ``key``: connector_core's :class:`Checkpoint`,
    which ``read()`` takes as well.

    ``read(stream, since=checkpoint)`` resumes strictly after that row, so nothing is
    repeated or skipped even when many rows share one cursor value. With ``key=()`` it
    means "cursor strictly greater than ``cursor``". Get one from ``reader.checkpoint``
    after a read, or build it from a record with :meth:`after`.

    It survives JSON: ``ReadCheckpoint.model_validate_json(cp.model_dump_json())`` turns
    timestamps, decimals and UUIDs into strings, and ``read()`` casts such strings back
    to the column's type (taken from the catalog) when it binds them.
    """


def as_checkpoint(since: Any) -> Checkpoint | None:
    """Normalize ``since``: None, a Checkpoint (connector_core's or a ReadCheckpoint), or
    a ``(cursor, key)`` tuple.

    A plain value is not a checkpoint (it means "cursor >= value"); returns None for it.
    """
    if isinstance(since, Checkpoint):
        return since
    if isinstance(since, tuple) and len(since) == 2:
        cursor, key = since
        return ReadCheckpoint(cursor=cursor, key=key if isinstance(key, tuple) else (key,))
    return None


class ReadState:
    """One read: its query, its position, and the generators that hand out its records
    (``cursor_records`` or ``page_records``; ``records()`` picks by ``scan``). Apart from
    :class:`RecordReader` so that a reader's generator does not refer back to the reader:
    a reader dropped before its end is then freed at once, and its generator closed (the
    cursor's transaction ended, its connection given back) instead of waiting for the
    cycle collector.
    """

    def __init__(
        self,
        fetch: FetchPage,
        load_table: Callable[[bool], Awaitable[tuple[Table, bool]]],
        *,
        since: Any,
        cursor_field: str | None,
        key_fields: Sequence[str] | None,
        limit: int | None,
        page_size: int,
        lag: dt.timedelta | None = None,
        scan: ReadScan = "keyset",
        open_cursor: OpenCursor | None = None,
        scan_deadline: ScanDeadline | None = None,
        hint: IndexHint | None = None,
    ) -> None:
        if limit is not None and limit < 0:
            raise InvalidRequestError("limit must be >= 0", connector="postgres")
        if page_size < 1:
            raise InvalidRequestError("batch_size must be >= 1", connector="postgres")
        if lag is not None and (cursor_field is None or lag < dt.timedelta(0)):
            raise InvalidRequestError(
                "lag needs a cursor_field and must not be negative", connector="postgres"
            )
        if scan not in ("cursor", "keyset") or (scan == "cursor" and open_cursor is None):
            raise InvalidRequestError(
                f"scan must be 'cursor' or 'keyset', not {scan!r}", connector="postgres"
            )
        checkpoint = as_checkpoint(since)
        if since is not None and checkpoint is None and cursor_field is None:
            raise InvalidRequestError(
                "since= needs a cursor_field (or a ReadCheckpoint of the key)",
                connector="postgres",
            )
        self._fetch = fetch
        self._open_cursor = open_cursor
        self._scan_deadline = scan_deadline
        self._hint = hint
        self._scan = scan
        self._load_table = load_table
        self._cursor_field = cursor_field
        self._requested_keys = key_fields
        self._key_fields: tuple[str, ...] = ()
        self._since_value = since if checkpoint is None else None
        self._start: Checkpoint | None = checkpoint
        # The last row handed out (an immutable asyncpg Record: the caller's dict may be
        # changed), and the checkpoint made from it on demand.
        self.last: Any = None
        self._made: tuple[Any, Checkpoint] | None = None
        self._remaining = limit
        self._page_size = page_size
        self._table: Table | None = None
        self._cached = False
        self._select = ""
        self._order_sql = ""
        self._lag = lag
        self._lag_clock = "now()"
        # Column -> its SQL type, for columns whose text values need a cast.
        self._casts: dict[str, str] = {}
        self._not_null: tuple[str, ...] = ()
        self._as_dict: Callable[[Any], dict[str, Any]] = dict

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The position after the last record handed out (before the first: the ``since``
        checkpoint, or None)."""
        last = self.last
        if last is None:
            return self._start
        made = self._made
        if made is None or made[0] is not last:
            point = ReadCheckpoint.after(
                last, cursor_field=self._cursor_field, key_fields=self._key_fields
            )
            self._made = made = (last, point)
        return made[1]

    @property
    def scan(self) -> ReadScan:
        """How the records are read: ``"cursor"`` or ``"keyset"``."""
        return self._scan

    async def _prepare(self, *, fresh: bool = False) -> None:
        table, self._cached = await self._load_table(fresh)
        name = table.stream.qualified_name
        cursor_field = self._cursor_field
        if cursor_field is not None:
            cursor = table.column(cursor_field)  # NotFoundError naming the known fields
            if self._lag is not None:
                if cursor.type not in _LAG_TYPES:
                    raise InvalidRequestError(
                        f"lag needs a date or timestamp cursor; {cursor_field!r} of {name!r} "
                        f"is {cursor.native_type or cursor.type.value}",
                        connector="postgres",
                    )
                without_zone = (cursor.native_type or "").startswith("timestamp without")
                self._lag_clock = "LOCALTIMESTAMP" if without_zone else "now()"
        requested = self._requested_keys is not None
        keys = tuple(self._requested_keys or ()) if requested else table.stream.primary_key
        key_columns = [table.column(k) for k in keys]
        nullable = [f.name for f in key_columns if f.nullable]
        if nullable and table.writable:
            # A NULL key cannot be compared: rows holding one would be skipped silently.
            raise InvalidRequestError(
                f"key_fields {nullable} of {name!r} are nullable; incremental reads need "
                "NOT NULL key columns (a NULL key cannot be ordered or compared)",
                connector="postgres",
            )
        # A view's columns are all nullable as far as the catalog knows: rows whose key
        # is NULL are left out explicitly (documented), never skipped by accident.
        self._not_null = tuple(nullable)
        self._key_fields = tuple(k for k in keys if k != cursor_field)
        # The order is unique when the key is unique and the cursor is either apart from
        # it (a tie-breaker) or part of it (the order is the key's own).
        unique = bool(self._key_fields) or (cursor_field is not None and cursor_field in keys)
        if not unique:
            raise InvalidRequestError(
                f"stream {name!r} has no primary key: incremental "
                "reads need a unique tie-breaker; pass key_fields=(...)",
                connector="postgres",
            )
        order = ((cursor_field,) if cursor_field else ()) + self._key_fields
        self._casts = {
            f.name: f.native_type
            for f in (table.column(c) for c in order)
            if f.type not in _TEXT_TYPES and f.native_type
        }
        self._select = f"SELECT {column_list(table.columns)} FROM {table.sql_name}"  # noqa: S608
        self._as_dict = dict_maker(table.columns)
        self._order_sql = ", ".join(quote_ident(c) for c in order)
        self._table = table
        if self._hint is not None:
            self._hint(table, order)

    def _bind(self, column: str, value: Any, args: list[Any]) -> str:
        """Append ``value`` to ``args``; the placeholder for it, as the column's type."""
        args.append(value)
        placeholder = f"${len(args)}"
        native = self._casts.get(column)
        if isinstance(value, str) and native is not None:
            # From the catalog (format_type, which quotes what needs quoting), never
            # from the caller.
            return f"{placeholder}::text::{native}"
        return placeholder

    def records(self) -> AsyncIterator[Record]:
        """The records, as the generator of this read's ``scan``."""
        return self.cursor_records() if self._scan == "cursor" else self.page_records()

    async def cursor_records(self) -> AsyncIterator[Record]:
        """One server-side cursor over the whole read. When it fails on a transient error
        (a dead connection) after records were handed out, or on a stale cached catalog
        entry, it is opened again from the checkpoint, in a new transaction of its own;
        never inside the caller's transaction."""
        if self._remaining == 0:
            return
        await self._prepare()
        open_cursor = self._open_cursor
        as_dict = self._as_dict
        assert open_cursor is not None
        refreshed = False
        while True:
            table = self._table
            assert table is not None
            sql, args = self._query(self._remaining)
            size = self._page_size
            if self._remaining is not None:
                size = min(size, self._remaining)
            progressed = False
            owned = False
            estimate = table.stream.estimated_count
            deadline: float | UseDefault | None = USE_DEFAULT
            if self._scan_deadline is not None:
                deadline = self._scan_deadline(estimate)
            last_rows: Sequence[Any] = ()
            try:
                async with open_cursor() as session:
                    owned = session.owned
                    next_batch = await session.cursor(
                        sql, args, size, operation="read", first_fetch_timeout=deadline
                    )
                    # In a transaction of its own nothing else uses the connection: the
                    # next batch is fetched while this one is handed out, so the server
                    # works while the caller does. In the caller's transaction it waits
                    # (the caller may run statements on that connection between rows).
                    pending: asyncio.Future[Sequence[Any]] | None = None
                    try:
                        while True:
                            if pending is None:
                                rows = await next_batch()
                            else:
                                rows, pending = await pending, None
                            if rows:
                                progressed = True
                            remaining = self._remaining
                            if remaining is not None:
                                rows = rows[:remaining]
                                self._remaining = remaining - len(rows)
                            if len(rows) < size or self._remaining == 0:
                                # The last rows are handed out after the transaction
                                # ended: a reader read to its end (or limit) holds nothing.
                                last_rows = rows
                                break
                            if owned:
                                pending = _started(next_batch())
                            for row in rows:
                                self.last = row
                                yield as_dict(row)
                    finally:
                        if pending is not None:
                            await _settled(pending)
            except ConnectorError as error:
                if not owned:
                    raise
                if is_stale_catalog(error) and self._cached and not refreshed:
                    refreshed = True
                    await self._prepare(fresh=True)
                    as_dict = self._as_dict
                    continue
                if not (error.transient and progressed):
                    raise
                continue
            for row in last_rows:
                self.last = row
                yield as_dict(row)
            return

    async def page_records(self) -> AsyncIterator[Record]:
        """A keyset query per page, each retried on transient errors on its own."""
        if self._remaining == 0:
            return
        await self._prepare()
        refreshed = False
        while True:
            as_dict = self._as_dict
            size = self._page_size
            if self._remaining is not None:
                size = min(size, self._remaining)
            sql, args = self._query(size)
            try:
                rows = await self._fetch(sql, *args)
            except ConnectorError as error:
                # The table changed since it was looked up (a cached look-up): once per
                # reader, look it up again and rebuild the query.
                if refreshed or not self._cached or not is_stale_catalog(error):
                    raise
                refreshed = True
                await self._prepare(fresh=True)
                as_dict = self._as_dict
                sql, args = self._query(size)
                rows = await self._fetch(sql, *args)
            if self._remaining is not None:
                self._remaining -= len(rows)
            for row in rows:
                self.last = row
                yield as_dict(row)
            if len(rows) < size or self._remaining == 0:
                return

    def _query(self, limit: int | None) -> tuple[str, list[Any]]:
        """The read's query from the current checkpoint, with ``LIMIT limit`` if given."""
        conditions: list[str] = []
        args: list[Any] = []
        cursor = self._cursor_field
        if cursor is not None:
            # Row comparison cannot order NULLs: rows with a NULL cursor are not read.
            conditions.append(f"{quote_ident(cursor)} IS NOT NULL")
        conditions.extend(f"{quote_ident(k)} IS NOT NULL" for k in self._not_null)
        if cursor is not None and self._lag is not None:
            args.append(self._lag)
            conditions.append(
                f"{quote_ident(cursor)} <= {self._lag_clock} - ${len(args)}::interval"
            )
        checkpoint = self.checkpoint
        if checkpoint is not None:
            if cursor is not None and not checkpoint.key:
                param = self._bind(cursor, checkpoint.cursor, args)
                conditions.append(f"{quote_ident(cursor)} > {param}")
            else:
                if len(checkpoint.key) != len(self._key_fields):
                    raise InvalidRequestError(
                        f"checkpoint key has {len(checkpoint.key)} values but the key "
                        f"{self._key_fields} has {len(self._key_fields)}",
                        connector="postgres",
                    )
                pairs = list(zip(self._key_fields, checkpoint.key, strict=True))
                if cursor is not None:
                    pairs.insert(0, (cursor, checkpoint.cursor))
                params = ", ".join(self._bind(column, value, args) for column, value in pairs)
                conditions.append(f"({self._order_sql}) > ({params})")
        elif self._since_value is not None and cursor is not None:
            param = self._bind(cursor, self._since_value, args)
            conditions.append(f"{quote_ident(cursor)} >= {param}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"{self._select}{where} ORDER BY {self._order_sql}"
        if limit is not None:
            args.append(limit)
            sql += f" LIMIT ${len(args)}"
        return sql, args


def dict_maker(columns: Sequence[str]) -> Callable[[Any], dict[str, Any]]:
    """A function from a row of ``columns`` (in that order) to its dict, written as a
    dict display (``lambda row: {'id': row[0], ...}``) as dataclasses and namedtuple
    write their methods: about 0.7 us per four-column row here, against 1.2 us for
    ``dict(row)`` and ``dict(row.items())`` (which make a pair per column). The names
    go in as ``repr()`` string literals, so any name is only ever a string."""
    body = ", ".join(f"{name!r}: row[{i}]" for i, name in enumerate(columns))
    made: Callable[[Any], dict[str, Any]] = eval(f"lambda row: {{{body}}}", {})  # noqa: S307
    return made


def _started(fetch: Awaitable[Sequence[Any]]) -> asyncio.Future[Sequence[Any]]:
    """``fetch`` running in a task of its own; an error nobody awaits is not logged."""
    task = asyncio.ensure_future(fetch)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


async def _settled(task: asyncio.Future[Sequence[Any]]) -> None:
    """Wait for a fetch the reader no longer wants (it was closed between batches), so
    that the connection is idle when its transaction ends; cancelled with the caller."""
    if task.done():
        return
    try:
        await asyncio.wait((task,))
    except asyncio.CancelledError:
        task.cancel()
        raise


class RecordReader(AsyncIterator[Record]):
    """The async iterator ``PostgresConnector.read()`` returns: records as dicts, in
    (cursor, key) order. ``checkpoint`` is the position after the last record handed out
    (the ``since`` checkpoint, or None, before the first).

    ``scan="cursor"`` reads them through one server-side cursor, ``scan="keyset"`` a page
    at a time. The stream is resolved against the catalog when iteration starts, so an
    unknown stream or field raises NotFoundError from the first ``__anext__``. A cursor
    read left before its end holds its connection until the reader is closed
    (``aclose()``, ``contextlib.aclosing(reader)``) or dropped; one read to its end (or
    its ``limit``) has already given it back when it hands out its last records.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Arguments as ReadState's (built by PostgresConnector.read(), not by callers).
        self._state = ReadState(*args, **kwargs)
        self._rows: AsyncIterator[Record] | None = None

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The position after the last record handed out (before the first: the ``since``
        checkpoint, or None)."""
        return self._state.checkpoint

    @property
    def scan(self) -> ReadScan:
        """How the records are read: ``"cursor"`` or ``"keyset"``."""
        return self._state.scan

    def _records(self) -> AsyncIterator[Record]:
        rows = self._rows
        if rows is None:
            rows = self._rows = self._state.records()
        return rows

    def __aiter__(self) -> AsyncIterator[Record]:
        # The generator itself: ``async for`` then costs one generator step per record.
        return self._records()

    async def __anext__(self) -> Record:
        return await self._records().__anext__()

    async def aclose(self) -> None:
        """Stop reading: a cursor's transaction ends and its connection goes back to the
        pool. Harmless after the end, or before the first record."""
        rows = self._rows
        if rows is not None:
            await rows.aclose()  # type: ignore[attr-defined]


class IndexHints:
    """Says once per table and order, on ``logger``, when no index can give a read its
    order: without one every read (every page of a keyset read) scans and sorts the
    table, and an incremental read from a recent checkpoint scans it all to find a few
    rows."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._told: set[tuple[str, str, tuple[str, ...]]] = set()

    def check(self, table: Table, order: Sequence[str]) -> None:
        if not order or table.relkind not in _INDEXABLE_KINDS:
            return  # a view's order comes from the tables beneath it
        if table.has_index_leading_with(order[0]):
            return
        seen = (table.schema, table.name, tuple(order))
        if seen in self._told:
            return
        self._told.add(seen)
        self._logger.warning(
            "read(%r) orders by (%s) but no index of %s starts with %s: every read scans "
            "and sorts the whole table. This index would help: "
            "CREATE INDEX CONCURRENTLY ON %s (%s)",
            table.stream.qualified_name,
            ", ".join(order),
            table.sql_name,
            quote_ident(order[0]),
            table.sql_name,
            column_list(order),
        )
