"""Both PostgreSQL data clients filled with the same tables: a helper per client that
creates a table from portable types and writes rows, so one test runs against both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connector_adapters.postgres_data import ManagedPostgresData, MockPostgresData
from connector_core import FieldType
from connector_postgres import quote_ident

_SQL = {
    FieldType.INTEGER: "bigint",
    FieldType.STRING: "text",
    FieldType.DATETIME: "timestamptz",
    FieldType.BOOLEAN: "boolean",
    FieldType.DECIMAL: "numeric",
    FieldType.JSON: "jsonb",
}


class Tables:
    """Creates tables and writes rows in either client's backing store."""

    def __init__(self, client: ManagedPostgresData | MockPostgresData) -> None:
        self.client = client

    async def create(
        self,
        name: str,
        fields: Mapping[str, FieldType],
        rows: Sequence[Mapping[str, Any]] = (),
        *,
        primary_key: Sequence[str] = ("id",),
    ) -> str:
        client = self.client
        if isinstance(client, MockPostgresData):
            client.create_table(name, fields, primary_key=primary_key)
        else:
            columns = ", ".join(f"{quote_ident(f)} {_SQL[t]}" for f, t in fields.items())
            keys = ", ".join(quote_ident(k) for k in primary_key)
            await client.connector.execute(
                f"CREATE TABLE {quote_ident(name)} ({columns}, PRIMARY KEY ({keys}))"
            )
        if rows:
            await self.upsert(name, rows)
        return name

    async def upsert(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        client = self.client
        if isinstance(client, MockPostgresData):
            client.upsert(name, rows)
            return
        result = await client.connector.write(name, [dict(r) for r in rows])
        assert result.ok, result.errors

    async def delete(self, name: str, ids: Sequence[Any]) -> None:
        client = self.client
        if isinstance(client, MockPostgresData):
            client.delete(name, ids)
            return
        await client.connector.execute(
            f"DELETE FROM {quote_ident(name)} WHERE id = ANY($1::bigint[])", list(ids)
        )
