"""ManagedPostgresData: the data adapter on a real PostgreSQL, through connector-postgres."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from connector_adapters.postgres_data._client import DataClientBase, RawRows
from connector_adapters.postgres_data._config import PostgresDataConfig
from connector_adapters.postgres_data._mapping import TableMap
from connector_core import ConfigError, FieldError, InvalidRequestError, Stream
from connector_postgres import PostgresConnector, __version__, quote_ident

_SNAPSHOT_SQL = (
    "SELECT txid_snapshot_xmin(s) AS xmin, txid_snapshot_xmax(s) AS xmax "
    "FROM txid_current_snapshot() AS s"
)
# Whether a row's 32-bit xmin lies in [boundary, boundary + width) modulo 2**32.
_XMIN_WINDOW_SQL = "((xmin::text::bigint - $1) % 4294967296 + 4294967296) % 4294967296 < $2"


def _as_text(value: Any) -> str:
    """A key value as the text PostgreSQL reads back into its column's type."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    return str(value)


class ManagedPostgresData(DataClientBase):
    """The data adapter over :class:`~connector_postgres.PostgresConnector`.

    Built from a :class:`PostgresDataConfig` whose ``postgres`` is set, or given a
    ``connector`` to share (its owner connects and disconnects it). Reads in
    updated_at mode are ``connector.read()`` (a server-side cursor ordered by
    (cursor, key), checkpoint after every row); xmin mode streams
    ``SELECT ... WHERE <xmin in window> ORDER BY key`` through ``connector.stream()``.
    Every call is on the connector's road (deadlines, retries of reads, typed errors).
    """

    version = __version__

    def __init__(
        self, config: PostgresDataConfig, *, connector: PostgresConnector | None = None
    ) -> None:
        super().__init__(config)
        if connector is None:
            if config.postgres is None:
                raise ConfigError(
                    "invalid PostgresDataConfig: the managed client needs 'postgres'",
                    errors=[FieldError("postgres", "required for the managed client")],
                )
            connector = PostgresConnector(config.postgres)
            self._owns = True
        else:
            self._owns = False
        self.connector = connector

    def __repr__(self) -> str:
        return f"ManagedPostgresData({self.connector!r})"

    async def connect(self) -> None:
        if self._owns:
            await self.connector.connect()

    async def disconnect(self) -> None:
        if self._owns:
            await self.connector.disconnect()

    async def ping(self) -> float:
        return await self.connector.ping()

    @property
    def is_connected(self) -> bool:
        return self.connector.is_connected

    async def __aenter__(self) -> ManagedPostgresData:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    async def _sources(self) -> list[Stream]:
        return list((await self.connector.discover()).streams)

    async def _source(self, stream: str) -> Stream:
        return (await self.connector.stream_info(stream)).stream

    def _cursor_rows(self, tmap: TableMap, since: Any, limit: int | None) -> RawRows:
        return self.connector.read(
            tmap.qualified,
            cursor_field=tmap.cursor,
            key_fields=tmap.key,
            since=since,
            limit=limit,
            batch_size=self.config.batch_size,
        )

    async def _snapshot(self) -> tuple[int, int]:
        row = await self.connector.query_one(_SNAPSHOT_SQL)
        assert row is not None
        return int(row["xmin"]), int(row["xmax"])

    async def _xmin_rows(
        self, tmap: TableMap, window: tuple[int, int] | None, after: tuple[Any, ...] | None
    ) -> AsyncIterator[dict[str, Any]]:
        sql, args = xmin_query(tmap, window, after)
        async for row in self.connector.stream(sql, *args, batch_size=self.config.batch_size):
            yield dict(row)

    async def _sample_rows(self, tmap: TableMap, n: int) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.connector.sample(tmap.qualified, n)]


def xmin_query(
    tmap: TableMap, window: tuple[int, int] | None, after: tuple[Any, ...] | None
) -> tuple[str, list[Any]]:
    """The SQL and arguments of an xmin pass over ``tmap``'s table (names quoted, values
    bound). Raises InvalidRequestError for a key column whose type is not known."""
    source = tmap.source
    table = f"{quote_ident(tmap.schema)}.{quote_ident(tmap.table)}"
    columns = ", ".join(quote_ident(f.name) for f in source.fields)
    order = ", ".join(quote_ident(k) for k in tmap.key)
    where: list[str] = []
    args: list[Any] = []
    if window is not None:
        where.append(_XMIN_WINDOW_SQL)
        args.extend(window)
    if after is not None:
        if len(after) != len(tmap.key):
            raise InvalidRequestError(
                f"checkpoint key {list(after)!r} does not fit the key {list(tmap.key)} of "
                f"{tmap.qualified}; delete the sync's checkpoint to start over",
                connector="postgres_data",
            )
        casts = []
        for name, value in zip(tmap.key, after, strict=True):
            native = source.field(name).native_type
            if native is None:  # pragma: no cover - the catalog always names it
                raise InvalidRequestError(f"no type known for {name!r}", connector="postgres_data")
            args.append(_as_text(value))
            casts.append(f"${len(args)}::text::{native}")
        where.append(f"({order}) > ({', '.join(casts)})")
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {columns} FROM {table}{condition} ORDER BY {order}", args  # noqa: S608
