"""The client both implementations share: table selection, mapping, the reader that
hands out entity records with a checkpoint, and the xmin pass.

A subclass says where tables and rows come from (``_source``, ``_sources``,
``_cursor_rows``, ``_snapshot``, ``_xmin_rows``, ``_sample_rows``); everything a
caller sees is decided here, once, so the managed and the mock client cannot drift.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from connector_adapters.postgres_data._config import PostgresDataConfig
from connector_adapters.postgres_data._mapping import TableMap, table_map
from connector_core import (
    Catalog,
    Checkpoint,
    InvalidRequestError,
    NotFoundError,
    Record,
    Stream,
)

logger = logging.getLogger("connector_adapters.postgres_data")

XID_MODULUS = 2**32
"""A row's ``xmin`` is the low 32 bits of the 64-bit transaction id."""
MAX_XMIN_WINDOW = 2**31
"""Transaction ids more than this far apart cannot be ordered from 32 bits: a run after
that many transactions is a full pass."""


class RawRows(Protocol):
    """Rows of one table in read order, and the checkpoint after the last one handed out."""

    @property
    def checkpoint(self) -> Checkpoint | None: ...

    def __aiter__(self) -> AsyncIterator[Mapping[str, Any]]: ...

    def __anext__(self) -> Awaitable[Mapping[str, Any]]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class PostgresDataClient(Protocol):
    """A PostgreSQL database as a data source: exposed tables as entity streams.

    A :class:`~connector_core.Connector` that is :class:`~connector_core.Discoverable`
    and :class:`~connector_core.Readable`, so ``connector_core.sync.StreamSync`` can
    copy its streams into any sink (pass ``deleted_field=await
    client.deleted_field(stream)`` to carry soft deletes over).
    """

    name: str
    version: str
    config: PostgresDataConfig

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def ping(self) -> float: ...

    @property
    def is_connected(self) -> bool: ...

    async def tables(self) -> tuple[str, ...]: ...

    async def table_map(self, stream: str) -> TableMap: ...

    async def deleted_field(self, stream: str) -> str | None: ...

    async def discover(self) -> Catalog: ...

    def read(
        self, stream: str, *, since: Any = None, limit: int | None = None, raw: bool = False
    ) -> ChangeReader: ...

    async def sample(self, stream: str, n: int = 10) -> list[Record]: ...


class ChangeReader:
    """Entity records of one table in read order (``raw=True``: the rows as stored).

    ``checkpoint`` is the position just after the last record handed out (in the
    table's own terms, so a coercion never changes it): pass it as ``since`` to
    resume. In xmin mode, once the pass is read to its end it is the start of the next
    pass. The table is resolved at the first step: an unknown or unexposed table raises
    NotFoundError there, a mapping that cannot work ConfigError.
    """

    def __init__(
        self,
        open_rows: Callable[[], Awaitable[tuple[TableMap, RawRows]]],
        *,
        since: Any,
        limit: int | None,
        raw: bool,
    ) -> None:
        self._open = open_rows
        self._rows: RawRows | None = None
        self._map: TableMap | None = None
        self._left = limit
        self._raw = raw
        self._done = False
        self.checkpoint: Checkpoint | None = since if isinstance(since, Checkpoint) else None

    def __aiter__(self) -> ChangeReader:
        return self

    async def __anext__(self) -> Record:
        if self._done:
            raise StopAsyncIteration
        if self._left is not None and self._left <= 0:
            await self.aclose()
            raise StopAsyncIteration
        if self._rows is None:
            self._map, self._rows = await self._open()
        assert self._map is not None
        try:
            row = await anext(self._rows)
        except StopAsyncIteration:
            self._done = True
            self.checkpoint = self._rows.checkpoint or self.checkpoint
            raise
        self.checkpoint = self._rows.checkpoint
        if self._left is not None:
            self._left -= 1
        return dict(row) if self._raw else self._map.record(row)

    async def aclose(self) -> None:
        """Stop reading (gives a held connection back at once); idempotent."""
        self._done = True
        if self._rows is not None:
            await self._rows.aclose()


def xmin_position(since: Any) -> tuple[int | None, int | None, tuple[Any, ...] | None]:
    """``(boundary, next, after_key)`` of an xmin-mode ``since``.

    None: a first, full pass. A Checkpoint whose cursor is ``{"xmin": B}``: a new pass of
    the rows written by transactions from B on; ``{"xmin": B, "next": S}`` with a key:
    that pass, resumed after the key (S is where the next pass starts). A plain integer:
    a new pass from that transaction id. Raises InvalidRequestError for anything else
    (a checkpoint of the updated-at mode, say)."""
    if since is None:
        return None, None, None
    if isinstance(since, Checkpoint):
        cursor = since.cursor
        if isinstance(cursor, Mapping) and "xmin" in cursor:
            boundary, nxt = cursor.get("xmin"), cursor.get("next")
            if _is_xid(boundary, optional=True) and _is_xid(nxt, optional=True):
                key = tuple(since.key) if nxt is not None and since.key else None
                return boundary, nxt, key
        raise InvalidRequestError(
            f"checkpoint {since.model_dump(mode='json')} is not an xmin position (the table "
            "was read in updated_at mode before?); delete the sync's checkpoint to start over",
            connector="postgres_data",
        )
    if isinstance(since, str) and since.strip().isdigit():
        since = int(since)
    if _is_xid(since):
        return int(since), None, None
    raise InvalidRequestError(
        "in xmin mode 'since' is a Checkpoint of this reader or a transaction id",
        connector="postgres_data",
    )


def _is_xid(value: Any, *, optional: bool = False) -> bool:
    if value is None:
        return optional
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def cursor_since(since: Any) -> Any:
    """An updated-at mode ``since``, refused when it is an xmin checkpoint."""
    if isinstance(since, Checkpoint) and isinstance(since.cursor, Mapping):
        raise InvalidRequestError(
            "this checkpoint is an xmin position but the table is read by its updated-at "
            "column; delete the sync's checkpoint to start over",
            connector="postgres_data",
        )
    return since


XminScan = Callable[
    [TableMap, tuple[int, int] | None, tuple[Any, ...] | None], AsyncIterator[dict[str, Any]]
]


class XminPass:
    """One pass over a table's rows written since a transaction id, in key order.

    The pass starts by taking the snapshot's ``xmin`` (S: every transaction this pass
    cannot see has an id >= S) and ``xmax``; it reads the rows whose ``xmin`` lies in
    [boundary, xmax) modulo 2**32 (all rows on a first pass, or when more than 2**31
    transactions passed), after ``after_key`` when resumed. When it ends the checkpoint
    says the next pass starts at S, so a row written while the pass ran is read again
    next time (at least once, never missed).
    """

    def __init__(
        self,
        tmap: TableMap,
        since: Any,
        snapshot: Callable[[], Awaitable[tuple[int, int]]],
        scan: XminScan,
    ) -> None:
        self._map = tmap
        self._boundary, self._next, self._after = xmin_position(since)
        self._snapshot = snapshot
        self._scan = scan
        self.checkpoint: Checkpoint | None = since if isinstance(since, Checkpoint) else None
        self._rows = self._run()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await anext(self._rows)

    async def aclose(self) -> None:
        await self._rows.aclose()

    async def _run(self) -> AsyncGenerator[dict[str, Any], None]:
        xmin, xmax = await self._snapshot()
        boundary = self._boundary
        nxt = self._next if self._next is not None else xmin
        window: tuple[int, int] | None = None
        if boundary is not None:
            width = xmax - boundary
            if 0 <= width < MAX_XMIN_WINDOW:
                window = (boundary % XID_MODULUS, width)
            else:
                logger.warning(
                    "%s: %d transactions since the last xmin position (more than %d, or the "
                    "database was replaced): reading every row",
                    self._map.qualified, width, MAX_XMIN_WINDOW,
                )  # fmt: skip
        key = self._map.key
        scan = self._scan(self._map, window, self._after)
        try:
            async for row in scan:
                self.checkpoint = Checkpoint(
                    cursor={"xmin": boundary, "next": nxt}, key=tuple(row[k] for k in key)
                )
                yield row
        finally:
            await _close(scan)
        self.checkpoint = Checkpoint(cursor={"xmin": nxt})


async def _close(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


class DataClientBase:
    """What the managed and the mock client share (see the module's docstring)."""

    name = "postgres_data"

    def __init__(self, config: PostgresDataConfig) -> None:
        self.config = config

    # -- what a subclass provides ----------------------------------------------------------

    async def _sources(self) -> list[Stream]:
        raise NotImplementedError

    async def _source(self, stream: str) -> Stream:
        raise NotImplementedError

    def _cursor_rows(self, tmap: TableMap, since: Any, limit: int | None) -> RawRows:
        raise NotImplementedError

    async def _snapshot(self) -> tuple[int, int]:
        raise NotImplementedError

    def _xmin_rows(
        self, tmap: TableMap, window: tuple[int, int] | None, after: tuple[Any, ...] | None
    ) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError

    async def _sample_rows(self, tmap: TableMap, n: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    # -- the client -----------------------------------------------------------------------

    def _exposed(self, stream: Stream) -> bool:
        return self.config.exposes(stream.name, stream.namespace or "public")

    async def tables(self) -> tuple[str, ...]:
        """The exposed tables' names, in the order of ``postgres.schemas``."""
        return tuple(s.name for s in await self._sources() if self._exposed(s))

    async def table_map(self, stream: str) -> TableMap:
        """The resolved mapping of ``stream`` (a table's bare name or ``schema.name``).
        Raises NotFoundError for a table that does not exist or is not exposed."""
        source = await self._source(stream)
        if not self._exposed(source):
            exposed = ", ".join(await self.tables()) or "none"
            raise NotFoundError(
                f"table {stream!r} is not exposed by include/exclude; exposed: {exposed}",
                connector=self.name,
            )
        return table_map(self.config, source)

    async def deleted_field(self, stream: str) -> str | None:
        """The entity field marking a soft delete in ``stream`` (None without one): what
        StreamSync's ``deleted_field`` should be."""
        return (await self.table_map(stream)).deleted_field

    async def discover(self) -> Catalog:
        """The exposed tables as entity streams: mapped field names and coerced types,
        the key, the cursor field (updated_at mode)."""
        maps = [table_map(self.config, s) for s in await self._sources() if self._exposed(s)]
        return Catalog(streams=tuple(m.stream() for m in maps))

    def read(
        self, stream: str, *, since: Any = None, limit: int | None = None, raw: bool = False
    ) -> ChangeReader:
        """Entity records of ``stream`` in order, from ``since`` (see
        :class:`~connector_core.Readable`): updated_at mode orders by (cursor, key) and
        reads after a checkpoint or from a plain cursor value (inclusive); xmin mode
        reads, in key order, the rows written since the checkpoint's transaction id.
        ``raw=True`` hands out the rows unmapped. Raises NotFoundError, ConfigError
        (a mapping that does not fit the table), InvalidRequestError (a checkpoint of
        the other mode), SerializationError (a value its coercion refuses)."""
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise InvalidRequestError("limit must be >= 0", connector=self.name)

        async def open_rows() -> tuple[TableMap, RawRows]:
            tmap = await self.table_map(stream)
            tmap.check()
            if tmap.incremental == "xmin":
                return tmap, XminPass(tmap, since, self._snapshot, self._xmin_rows)
            return tmap, self._cursor_rows(tmap, cursor_since(since), limit)

        return ChangeReader(open_rows, since=since, limit=limit, raw=raw)

    async def sample(self, stream: str, n: int = 10) -> list[Record]:
        """Up to ``n`` entity records of ``stream`` (in no particular order)."""
        if n < 0:
            raise InvalidRequestError("n must be >= 0", connector=self.name)
        tmap = await self.table_map(stream)
        return [tmap.record(row) for row in await self._sample_rows(tmap, n)]
