"""MockPostgresData: the data adapter on in-memory tables, for tests and offline use."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector_adapters.postgres_data._client import XID_MODULUS, DataClientBase
from connector_adapters.postgres_data._config import PostgresDataConfig
from connector_adapters.postgres_data._mapping import TableMap
from connector_core import (
    Checkpoint,
    FieldType,
    InvalidRequestError,
    NotConnectedError,
    NotFoundError,
    Stream,
    StreamField,
)

_VERSION = "0.1.0"
FIRST_XID = 1000
"""The mock's first transaction id (PostgreSQL's are 64-bit; a row shows the low 32)."""


def _revive(value: Any, kind: FieldType) -> Any:
    """A value that went through JSON (a checkpoint's), back in its column's type."""
    if not isinstance(value, str):
        return value
    if kind is FieldType.DATETIME:
        return dt.datetime.fromisoformat(value)
    if kind is FieldType.DATE:
        return dt.date.fromisoformat(value)
    if kind is FieldType.DECIMAL:
        return Decimal(value)
    if kind is FieldType.INTEGER:
        return int(value)
    if kind is FieldType.NUMBER:
        return float(value)
    if kind is FieldType.UUID:
        return uuid.UUID(value)
    return value


@dataclass
class _Table:
    stream: Stream
    rows: dict[tuple[Any, ...], tuple[dict[str, Any], int]] = field(default_factory=dict)
    """Rows by key, each with the id of the transaction that last wrote it."""

    def kind(self, column: str) -> FieldType:
        return self.stream.field(column).type


class _CursorRows:
    """The mock's updated-at read: (cursor, key) order, checkpoints like connector-postgres's."""

    def __init__(self, table: _Table, tmap: TableMap, since: Any) -> None:
        cursor = tmap.cursor
        assert cursor is not None
        self._cursor = cursor
        self._key = tuple(k for k in tmap.key if k != cursor)
        self.checkpoint: Checkpoint | None = since if isinstance(since, Checkpoint) else None
        revive = table.kind
        rows = [r for r, _ in table.rows.values() if r.get(cursor) is not None]
        rows.sort(key=self._position)
        if isinstance(since, Checkpoint):
            after = (
                _revive(since.cursor, revive(cursor)),
                tuple(_revive(v, revive(k)) for k, v in zip(self._key, since.key, strict=False)),
            )
            if since.key:
                rows = [r for r in rows if self._position(r) > after]
            else:
                rows = [r for r in rows if r[cursor] > after[0]]
        elif since is not None:
            start = _revive(since, revive(cursor))
            rows = [r for r in rows if r[cursor] >= start]
        self._rows = iter([dict(r) for r in rows])

    def _position(self, row: Mapping[str, Any]) -> tuple[Any, tuple[Any, ...]]:
        return row[self._cursor], tuple(row[k] for k in self._key)

    def __aiter__(self) -> _CursorRows:
        return self

    async def __anext__(self) -> dict[str, Any]:
        row = next(self._rows, None)
        if row is None:
            raise StopAsyncIteration
        self.checkpoint = Checkpoint(cursor=row[self._cursor], key=self._position(row)[1])
        return row

    async def aclose(self) -> None:
        self._rows = iter(())


class MockPostgresData(DataClientBase):
    """The data adapter on in-memory tables: the same reads, mapping, checkpoints and
    events as :class:`ManagedPostgresData`, for tests, demos and offline use.

    Fill it with :meth:`create_table` and :meth:`upsert` (each call is one
    transaction: its rows get the next transaction id, which xmin mode reads by) and
    remove rows with :meth:`delete` (a hard delete, which a source cannot report: use
    the soft-delete column). Tables live in ``config.postgres.schemas[0]`` (``public``
    without one) unless ``schema`` says otherwise. Reads need :meth:`connect`, as the
    managed client's do.
    """

    version = _VERSION

    def __init__(
        self, config: PostgresDataConfig | None = None, *, first_xid: int = FIRST_XID
    ) -> None:
        super().__init__(config or PostgresDataConfig())
        self._tables: dict[tuple[str, str], _Table] = {}
        self._next_xid = first_xid
        self._connected = False
        schemas = self.config.postgres.schemas if self.config.postgres is not None else ()
        self.schemas: tuple[str, ...] = tuple(schemas) or ("public",)

    def __repr__(self) -> str:
        return f"MockPostgresData(tables={len(self._tables)})"

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False

    async def ping(self) -> float:
        self._require_connection()
        return 0.0

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def __aenter__(self) -> MockPostgresData:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    def _require_connection(self) -> None:
        if not self._connected:
            raise NotConnectedError(
                "the mock is not connected: call connect()", connector=self.name
            )

    # -- filling it -----------------------------------------------------------------------

    def create_table(
        self,
        name: str,
        fields: Mapping[str, FieldType | str],
        *,
        primary_key: Sequence[str] = ("id",),
        schema: str | None = None,
        not_null: Iterable[str] = (),
        kind: str = "table",
    ) -> Stream:
        """Create (or replace) table ``name`` with ``fields`` (name -> portable type);
        ``primary_key`` and ``not_null`` columns are not nullable. Returns its Stream."""
        key = tuple(primary_key)
        required = set(key) | set(not_null)
        unknown = [k for k in (*key, *required) if k not in fields]
        if unknown:
            raise InvalidRequestError(
                f"column(s) {', '.join(unknown)} not in fields", connector=self.name
            )
        namespace = schema or self.schemas[0]
        stream = Stream(
            name=name,
            namespace=namespace,
            fields=tuple(
                StreamField(name=f, type=FieldType(t), nullable=f not in required)
                for f, t in fields.items()
            ),
            primary_key=key,
            kind=kind,
        )
        self._tables[(namespace, name)] = _Table(stream)
        return stream

    def _table(self, stream: str) -> _Table:
        if "." in stream:
            schema, _, bare = stream.partition(".")
            found = self._tables.get((schema, bare))
            if found is not None:
                return found
        for schema in self.schemas:
            found = self._tables.get((schema, stream))
            if found is not None:
                return found
        known = ", ".join(f"{s}.{t}" for s, t in self._tables) or "none"
        raise NotFoundError(
            f"stream {stream!r} not found in schemas {', '.join(self.schemas)}; known "
            f"streams: {known}",
            connector=self.name,
        )

    def upsert(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert or replace ``rows`` (by primary key) in one transaction; returns its id.
        A row's missing columns are NULL. Raises InvalidRequestError for an unknown
        column or a row without its key."""
        found = self._table(table)
        names = {f.name for f in found.stream.fields}
        key = found.stream.primary_key
        xid = self._next_xid
        staged: dict[tuple[Any, ...], tuple[dict[str, Any], int]] = {}
        for row in rows:
            extra = set(row) - names
            if extra:
                raise InvalidRequestError(
                    f"column(s) {', '.join(sorted(extra))} not in {table}", connector=self.name
                )
            full = {f: row.get(f) for f in names}
            if any(full[k] is None for k in key):
                raise InvalidRequestError(f"a row of {table} without its key", connector=self.name)
            ordered = {f.name: full[f.name] for f in found.stream.fields}
            staged[tuple(full[k] for k in key)] = (ordered, xid)
        found.rows.update(staged)  # all rows or none: staged first
        self._next_xid += 1
        return xid

    def delete(self, table: str, keys: Iterable[Sequence[Any] | Any]) -> int:
        """Remove rows by key (a value, or a tuple for a composite key); how many went."""
        found = self._table(table)
        gone = 0
        for key in keys:
            value = tuple(key) if isinstance(key, (tuple, list)) else (key,)
            gone += found.rows.pop(value, None) is not None
        self._next_xid += 1
        return gone

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The rows of ``table`` in key order (copies)."""
        found = self._table(table)
        return [dict(found.rows[k][0]) for k in sorted(found.rows)]

    # -- the source -----------------------------------------------------------------------

    async def _sources(self) -> list[Stream]:
        self._require_connection()
        order = {s: i for i, s in enumerate(self.schemas)}
        ordered = sorted(
            self._tables.items(), key=lambda i: (order.get(i[0][0], len(order)), i[0][1])
        )
        return [t.stream for _, t in ordered if t.stream.namespace in order]

    async def _source(self, stream: str) -> Stream:
        self._require_connection()
        return self._table(stream).stream

    def _cursor_rows(self, tmap: TableMap, since: Any, limit: int | None) -> _CursorRows:
        return _CursorRows(self._table(tmap.qualified), tmap, since)

    async def _snapshot(self) -> tuple[int, int]:
        return self._next_xid, self._next_xid  # nothing in progress: xmin == xmax

    async def _xmin_rows(
        self, tmap: TableMap, window: tuple[int, int] | None, after: tuple[Any, ...] | None
    ) -> AsyncIterator[dict[str, Any]]:
        table = self._table(tmap.qualified)
        key = tmap.key
        positions = sorted(
            (tuple(row[k] for k in key), row, xid) for row, xid in table.rows.values()
        )
        start = None
        if after is not None:
            start = tuple(_revive(v, table.kind(k)) for k, v in zip(key, after, strict=True))
        for position, row, xid in positions:
            if start is not None and position <= start:
                continue
            if window is not None:
                boundary, width = window
                if (xid % XID_MODULUS - boundary) % XID_MODULUS >= width:
                    continue
            yield dict(row)

    async def _sample_rows(self, tmap: TableMap, n: int) -> list[dict[str, Any]]:
        return self.rows(tmap.qualified)[:n]
