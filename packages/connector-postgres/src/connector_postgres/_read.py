"""Incremental reads: keyset pagination on (cursor, primary key).

Each page is one query ``WHERE (cursor, pk...) > (last seen) ORDER BY cursor, pk... LIMIT n``,
so rows that share a cursor value are neither skipped nor repeated between pages, and
:class:`ReadCheckpoint` carries the same position from one run to the next.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from connector_core import Checkpoint, ConnectorError, FieldType, InvalidRequestError, Record
from connector_postgres._catalog import Table
from connector_postgres._errors import is_stale_catalog
from connector_postgres._identifiers import column_list, quote_ident

FetchPage = Callable[..., Awaitable[Sequence[Any]]]

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


class RecordReader(AsyncIterator[Record]):
    """The async iterator ``PostgresConnector.read()`` returns: records as dicts, in
    (cursor, key) order, fetched a page at a time. ``checkpoint`` is the position after
    the last record handed out (the ``since`` checkpoint, or None, before the first).

    The stream is resolved against the catalog when iteration starts, so an unknown
    stream or field raises NotFoundError from the first ``__anext__``.
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
    ) -> None:
        if limit is not None and limit < 0:
            raise InvalidRequestError("limit must be >= 0", connector="postgres")
        if page_size < 1:
            raise InvalidRequestError("batch_size must be >= 1", connector="postgres")
        if lag is not None and (cursor_field is None or lag < dt.timedelta(0)):
            raise InvalidRequestError(
                "lag needs a cursor_field and must not be negative", connector="postgres"
            )
        checkpoint = as_checkpoint(since)
        if since is not None and checkpoint is None and cursor_field is None:
            raise InvalidRequestError(
                "since= needs a cursor_field (or a ReadCheckpoint of the key)",
                connector="postgres",
            )
        self._fetch = fetch
        self._load_table = load_table
        self._cursor_field = cursor_field
        self._requested_keys = key_fields
        self._key_fields: tuple[str, ...] = ()
        self._since_value = since if checkpoint is None else None
        self.checkpoint: Checkpoint | None = checkpoint
        self._remaining = limit
        self._page_size = page_size
        self._page: list[dict[str, Any]] = []
        self._position = 0
        self._done = limit == 0
        self._prepared = False
        self._refreshed = False
        self._cached = False
        self._select = ""
        self._order_sql = ""
        self._lag = lag
        self._lag_clock = "now()"
        # Column -> its SQL type, for columns whose text values need a cast.
        self._casts: dict[str, str] = {}
        self._not_null: tuple[str, ...] = ()

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
        self._order_sql = ", ".join(quote_ident(c) for c in order)
        self._prepared = True

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

    def __aiter__(self) -> RecordReader:
        return self

    async def __anext__(self) -> Record:
        if not self._prepared:
            await self._prepare()
        if self._position >= len(self._page):
            if self._done:
                raise StopAsyncIteration
            await self._next_page()
            if not self._page:
                self._done = True
                raise StopAsyncIteration
        record = self._page[self._position]
        self._position += 1
        if self._remaining is not None:
            self._remaining -= 1
            if self._remaining <= 0:
                self._done = True
                self._page = self._page[: self._position]
        self.checkpoint = ReadCheckpoint.after(
            record, cursor_field=self._cursor_field, key_fields=self._key_fields
        )
        return record

    def _page_query(self) -> tuple[str, list[Any]]:
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
        size = self._page_size
        if self._remaining is not None:
            size = min(size, self._remaining)
        args.append(size)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"{self._select}{where} ORDER BY {self._order_sql} LIMIT ${len(args)}"
        return sql, args

    async def _next_page(self) -> None:
        sql, args = self._page_query()
        try:
            rows = await self._fetch(sql, *args)
        except ConnectorError as error:
            # The table changed since it was looked up (a cached look-up): once per
            # reader, look it up again and rebuild the query.
            if self._refreshed or not self._cached or not is_stale_catalog(error):
                raise
            self._refreshed = True
            await self._prepare(fresh=True)
            sql, args = self._page_query()
            rows = await self._fetch(sql, *args)
        self._page = [dict(r) for r in rows]
        self._position = 0
        if len(self._page) < args[-1]:
            self._done = True
