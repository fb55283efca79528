"""Discovery and name resolution from pg_catalog.

Every caller-given stream, table or column name is resolved here against the
catalog *before* any SQL is built with it: a name that is not an existing table
(``users; DROP TABLE x``) is a NotFoundError and nothing else runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from connector_core import (
    ConnectorError,
    FieldType,
    ForeignKey,
    NotFoundError,
    Stream,
    StreamField,
)
from connector_postgres._errors import is_stale_catalog
from connector_postgres._identifiers import qualified
from connector_postgres._session import Session
from connector_postgres._types import field_type

T = TypeVar("T")
Fetch = Callable[..., Awaitable[Sequence[Any]]]
logger = logging.getLogger("connector.postgres")

_KIND_NAMES = {"r": "table", "p": "table", "v": "view", "m": "materialized_view", "f": "table"}
WRITABLE_KINDS = frozenset({"r", "p", "f"})

_RELATIONS_SQL = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       c.reltuples::float8 AS estimate, obj_description(c.oid, 'pg_class') AS description
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[])
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
  AND ($2::text[] IS NULL OR c.relname = ANY($2::text[]))
ORDER BY array_position($1::text[], n.nspname::text), c.relname
"""

_COLUMNS_SQL = """
SELECT a.attrelid AS oid, a.attname AS name, a.attnotnull AS not_null,
       format_type(a.atttypid, a.atttypmod) AS native,
       COALESCE(d.typname, t.typname) AS typname,
       COALESCE(d.typtype, t.typtype)::text AS typtype,
       COALESCE(d.typcategory, t.typcategory)::text AS typcategory,
       e.typname AS elem_typname, e.typtype::text AS elem_typtype,
       e.typcategory::text AS elem_typcategory,
       col_description(a.attrelid, a.attnum) AS description
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type d ON t.typtype = 'd' AND d.oid = t.typbasetype
LEFT JOIN pg_catalog.pg_type e ON e.oid = COALESCE(d.typelem, t.typelem)
     AND COALESCE(d.typcategory, t.typcategory) = 'A'
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_CONSTRAINTS_SQL = """
SELECT con.conrelid AS oid, con.contype::text AS kind, con.conname AS name,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.ord) AS columns,
       fn.nspname AS ref_schema, fc.relname AS ref_table,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.ord) AS ref_columns
FROM pg_catalog.pg_constraint con
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = ANY($1::oid[]) AND con.contype IN ('p', 'f')
ORDER BY con.conrelid, con.contype, con.conname
"""

# Plain b-tree indexes (no expression, no predicate, valid) by their key columns in
# order: the ones that can give read() its ORDER BY (cursor, key) without a sort.
_INDEXES_SQL = """
SELECT i.indrelid AS oid,
       ARRAY(SELECT a.attname::text FROM generate_series(0, i.indnkeyatts - 1) k(pos)
             JOIN pg_catalog.pg_attribute a
               ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.pos]
             ORDER BY k.pos) AS columns
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
WHERE i.indrelid = ANY($1::oid[]) AND i.indisvalid AND am.amname = 'btree'
  AND i.indexprs IS NULL AND i.indpred IS NULL
ORDER BY i.indrelid, ic.relname
"""

# Column names that make a good incremental cursor, in order of preference.
_CURSOR_CANDIDATES = ("updated_at", "modified_at", "last_modified", "updated", "modified")
_CURSOR_TYPES = frozenset({FieldType.DATETIME, FieldType.DATE, FieldType.INTEGER})


@dataclass(frozen=True, slots=True)
class Table:
    """A resolved relation: its schema, name, kind and the stream describing it."""

    schema: str
    name: str
    relkind: str
    stream: Stream
    indexes: tuple[tuple[str, ...], ...] = ()
    """Key columns of each plain b-tree index, in order (none for a view)."""

    @property
    def sql_name(self) -> str:
        """The quoted, schema-qualified name to put in SQL text."""
        return qualified(self.schema, self.name)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.stream.fields)

    @property
    def writable(self) -> bool:
        return self.relkind in WRITABLE_KINDS

    def has_index_leading_with(self, column: str) -> bool:
        """Whether a plain b-tree index starts with ``column`` (so that an ``ORDER BY
        column, ...`` can come from the index, with at most an incremental sort)."""
        return any(index[0] == column for index in self.indexes if index)

    def column(self, name: str) -> StreamField:
        """The column called ``name``; raises NotFoundError listing the known columns."""
        return self.stream.field(name)


def _field(row: Any) -> StreamField:
    kind = field_type(row["typname"], row["typtype"], row["typcategory"])
    item = None
    if kind is FieldType.ARRAY and row["elem_typname"] is not None:
        item = field_type(row["elem_typname"], row["elem_typtype"], row["elem_typcategory"])
    return StreamField(
        name=row["name"],
        type=kind,
        nullable=not row["not_null"],
        native_type=row["native"],
        item_type=item,
        description=row["description"],
    )


def _cursor_field(fields: Sequence[StreamField]) -> str | None:
    by_name = {f.name: f for f in fields}
    for name in _CURSOR_CANDIDATES:
        candidate = by_name.get(name)
        if candidate is not None and candidate.type in _CURSOR_TYPES:
            return name
    return None


async def load_tables(
    fetch: Fetch, schemas: Sequence[str], names: Sequence[str] | None = None
) -> list[Table]:
    """Tables and views of ``schemas`` (only those called one of ``names``, when given),
    with columns, keys, foreign keys and estimated row counts."""
    relations = await fetch(_RELATIONS_SQL, list(schemas), list(names) if names else None)
    if not relations:
        return []
    oids = [r["oid"] for r in relations]
    columns = await fetch(_COLUMNS_SQL, oids)
    constraints = await fetch(_CONSTRAINTS_SQL, oids)
    indexes_by_oid: dict[int, list[tuple[str, ...]]] = {oid: [] for oid in oids}
    for row in await fetch(_INDEXES_SQL, oids):
        indexes_by_oid[row["oid"]].append(tuple(row["columns"]))
    fields_by_oid: dict[int, list[StreamField]] = {oid: [] for oid in oids}
    for row in columns:
        fields_by_oid[row["oid"]].append(_field(row))
    pk_by_oid: dict[int, tuple[str, ...]] = {}
    fks_by_oid: dict[int, list[ForeignKey]] = {oid: [] for oid in oids}
    for row in constraints:
        if row["kind"] == "p":
            pk_by_oid[row["oid"]] = tuple(row["columns"])
        else:
            fks_by_oid[row["oid"]].append(
                ForeignKey(
                    fields=tuple(row["columns"]),
                    references_stream=f"{row['ref_schema']}.{row['ref_table']}",
                    references_fields=tuple(row["ref_columns"]),
                )
            )
    tables = []
    for rel in relations:
        oid = rel["oid"]
        fields = tuple(fields_by_oid[oid])
        estimate = rel["estimate"]
        stream = Stream(
            name=rel["name"],
            namespace=rel["schema"],
            fields=fields,
            primary_key=pk_by_oid.get(oid, ()),
            cursor_field=_cursor_field(fields),
            foreign_keys=tuple(fks_by_oid[oid]),
            # reltuples is -1 until the table is first vacuumed or analyzed.
            estimated_count=int(estimate) if estimate is not None and estimate >= 0 else None,
            kind=_KIND_NAMES.get(rel["kind"], "table"),
        )
        tables.append(
            Table(rel["schema"], rel["name"], rel["kind"], stream, tuple(indexes_by_oid[oid]))
        )
    return tables


async def resolve_table(fetch: Fetch, schemas: Sequence[str], stream: str) -> Table:
    """The table or view that ``stream`` names: a bare name (searched in ``schemas`` in
    order) or ``schema.name``. Raises NotFoundError listing the known streams."""
    if not stream:
        raise NotFoundError("stream name is empty", connector="postgres")
    bare = stream
    schema: str | None = None
    candidates = [stream]
    if "." in stream:
        schema, _, bare = stream.partition(".")
        candidates.append(bare)
    tables = await load_tables(fetch, schemas, candidates)
    for table in tables:  # already in schema order
        if table.name == stream:
            return table
    for table in tables:
        if schema is not None and table.schema == schema and table.name == bare:
            return table
    known_rows = await fetch(_RELATIONS_SQL, list(schemas), None)
    known = [f"{r['schema']}.{r['name']}" for r in known_rows]
    listing = ", ".join(known[:30]) + (", ..." if len(known) > 30 else "") if known else "none"
    raise NotFoundError(
        f"stream {stream!r} not found in schemas {', '.join(schemas)}; known streams: {listing}",
        connector="postgres",
    )


class CatalogCache:
    """Resolved tables by the name a caller gave (bare or ``schema.name``), each kept for
    ``ttl`` seconds (0: nothing is kept).

    Only tables that came out of :func:`resolve_table` are stored, so a name is still
    never put into SQL unless the catalog knew it; unknown names are not cached (they
    are looked up again every time). Callers drop an entry when the server says it is
    stale (an undefined table or column, a changed row type) and look it up again.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, Table]] = {}

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def get(self, stream: str) -> Table | None:
        entry = self._entries.get(stream)
        if entry is None:
            return None
        expires, table = entry
        if self._clock() >= expires:
            del self._entries[stream]
            return None
        return table

    def put(self, stream: str, table: Table) -> None:
        if self._ttl > 0:
            self._entries[stream] = (self._clock() + self._ttl, table)

    def invalidate(self, stream: str | None = None) -> None:
        """Forget ``stream`` (and every other name that resolved to the same table), or
        everything when ``stream`` is None."""
        if stream is None:
            self._entries.clear()
            return
        entry = self._entries.pop(stream, None)
        targets = {(entry[1].schema, entry[1].name)} if entry is not None else set()
        if "." in stream:
            schema, _, bare = stream.partition(".")
            targets.add((schema, bare))
        for name, (_, table) in list(self._entries.items()):
            if (table.schema, table.name) in targets or table.name == stream:
                del self._entries[name]

    def __len__(self) -> int:
        return len(self._entries)


class CatalogResolver:
    """Resolves stream names to tables on a session, through a :class:`CatalogCache`;
    shared by every part of the connector that turns a name into SQL (reads, writes,
    COPY, the transaction handle).

    On a session inside a transaction nothing is cached: the transaction sees its own
    DDL, which may yet be rolled back.
    """

    def __init__(self, schemas: Sequence[str], ttl: float) -> None:
        self.schemas = tuple(schemas)
        self.cache = CatalogCache(ttl)

    async def tables(self, session: Session) -> list[Table]:
        """Every table and view of the schemas (discovery; never cached)."""
        return await load_tables(_catalog_fetch(session), self.schemas)

    async def resolve(
        self,
        session: Session,
        stream: str,
        *,
        columns: Iterable[str] = (),
        fresh: bool = False,
    ) -> tuple[Table, bool]:
        """The table ``stream`` names, and whether it came from the cache.

        A cached table that lacks one of ``columns`` is looked up again once (a column
        added since), so the caller's NotFoundError is about the current table.
        """
        if session.in_transaction:
            return await resolve_table(_catalog_fetch(session), self.schemas, stream), False
        if not fresh:
            cached = self.cache.get(stream)
            if cached is not None:
                known = set(cached.columns)
                if all(c in known for c in columns):
                    return cached, True
        table = await resolve_table(_catalog_fetch(session), self.schemas, stream)
        self.cache.put(stream, table)
        return table, False

    async def with_table(
        self,
        session: Session,
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
        table, cached = await self.resolve(session, stream, columns=names)
        try:
            return await call(table)
        except ConnectorError as error:
            if not is_stale_catalog(error):
                raise
            self.cache.invalidate(stream)
            if not cached or not rerunnable:
                raise
            logger.debug("catalog entry of %r was stale; looking it up again", stream)
        table, _ = await self.resolve(session, stream, columns=names, fresh=True)
        return await call(table)

    def invalidate(self, stream: str | None = None) -> None:
        """Forget the cached look-up of ``stream``, or of every table when None."""
        self.cache.invalidate(stream)


def _catalog_fetch(session: Session) -> Fetch:
    async def fetch(sql: str, *args: Any) -> Sequence[Any]:
        return await session.fetch("catalog", sql, *args, idempotent=True)

    return fetch
