"""PostgresStateStore: sync checkpoints (and fingerprints) in a PostgreSQL table: the
PostgreSQL implementation of connector_core.sync's StateStore port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from connector_core.sync import JsonObject, decode_state, state_value
from connector_postgres._identifiers import quote_ident
from connector_postgres._lease import lease_key

if TYPE_CHECKING:
    from connector_postgres._connector import PostgresConnector

DEFAULT_STATE_TABLE = "connector_state"


def _qualified(table: str) -> str:
    return ".".join(quote_ident(part) for part in table.split("."))


def state_table_ddl(table: str = DEFAULT_STATE_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the state table (``table`` may be schema.table)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {_qualified(table)} (\n"
        "  namespace text NOT NULL,\n"
        "  key text NOT NULL,\n"
        "  value jsonb NOT NULL,\n"
        "  updated_at timestamptz NOT NULL DEFAULT now(),\n"
        "  PRIMARY KEY (namespace, key)\n"
        ")"
    )


class PostgresStateStore:
    """A :class:`connector_core.sync.StateStore` in one table, through PostgresConnector.

    Rows are ``(namespace, key, value jsonb, updated_at)``; ``namespace`` keeps several
    applications apart in one table. ``put_many`` runs in one transaction, so a
    checkpoint and its fingerprints commit together. The table is created on first
    use (``CREATE TABLE IF NOT EXISTS``); call :meth:`setup` to do it up front.

    The connector must be connected. Raises the connector's errors (QueryError,
    ConnectionFailedError, ...) and SerializationError for non-JSON values, and for
    stored values that are not JSON objects or nest too deeply to decode.
    """

    def __init__(
        self,
        connector: PostgresConnector,
        *,
        table: str = DEFAULT_STATE_TABLE,
        namespace: str = "default",
    ) -> None:
        self.connector = connector
        self.table = table
        self.namespace = namespace
        self._sql_table = _qualified(table)
        self._ready = False
        self._setup_lock = asyncio.Lock()
        self._upsert = (
            f"INSERT INTO {self._sql_table} (namespace, key, value, updated_at) "  # noqa: S608
            "VALUES ($1, $2, $3::text::jsonb, now()) "
            "ON CONFLICT (namespace, key) DO UPDATE "
            "SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at"
        )

    def __repr__(self) -> str:
        return f"PostgresStateStore(table={self.table!r}, namespace={self.namespace!r})"

    async def setup(self) -> None:
        """Create the table when it does not exist (idempotent; safe when several workers
        start at once: concurrent ``CREATE TABLE IF NOT EXISTS`` of one name can fail on
        the catalog's unique index, so the DDL runs under a transaction-level advisory
        lock of the table's name)."""
        async with self._setup_lock:
            if not self._ready:
                async with self.connector.transaction() as tx:
                    await tx.execute(
                        "SELECT pg_advisory_xact_lock($1)", lease_key("state-table", self.table)
                    )
                    await tx.execute(state_table_ddl(self.table))
                self._ready = True

    async def _ensure(self) -> None:
        if not self._ready:
            await self.setup()

    def _decode(self, key: str, text: str) -> JsonObject:
        # jsonb is valid JSON, but may be any JSON, or nest deeper than Python can decode.
        return decode_state(text, f"state value for {key!r} in table {self.table!r}")

    async def get(self, key: str) -> JsonObject | None:
        await self._ensure()
        text = await self.connector.query_value(
            f"SELECT value::text FROM {self._sql_table} "  # noqa: S608
            "WHERE namespace = $1 AND key = $2",
            self.namespace,
            key,
        )
        return self._decode(key, text) if text is not None else None

    async def get_many(self, keys: Sequence[str]) -> dict[str, JsonObject]:
        if not keys:
            return {}
        await self._ensure()
        rows = await self.connector.query(
            f"SELECT key, value::text AS value FROM {self._sql_table} "  # noqa: S608
            "WHERE namespace = $1 AND key = ANY($2::text[])",
            self.namespace,
            list(keys),
        )
        return {row["key"]: self._decode(row["key"], row["value"]) for row in rows}

    def _rows(self, items: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, str]]:
        return [
            (self.namespace, key, json.dumps(state_value(key, value), sort_keys=True))
            for key, value in items.items()
        ]

    async def put(self, key: str, value: Mapping[str, Any]) -> None:
        rows = self._rows({key: value})
        await self._ensure()
        await self.connector.execute(self._upsert, *rows[0], idempotent=True)

    async def put_many(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        if not items:
            return
        rows = self._rows(items)
        await self._ensure()
        async with self.connector.transaction() as tx:
            await tx.execute_many(self._upsert, rows)

    async def delete(self, key: str) -> None:
        await self._ensure()
        await self.connector.execute(
            f"DELETE FROM {self._sql_table} WHERE namespace = $1 AND key = $2",  # noqa: S608
            self.namespace,
            key,
            idempotent=True,
        )
