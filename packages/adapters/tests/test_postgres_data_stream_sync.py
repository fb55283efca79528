"""A PostgreSQL table -> the data adapter -> another PostgreSQL table with StreamSync, on
the real server: mapped fields, incremental runs in both modes, soft deletes carried over
as the soft-delete column (delete_mode="soft") or as deletes (delete_mode="hard")."""

from __future__ import annotations

from typing import Any

import pytest

from connector_adapters.postgres_data import ManagedPostgresData, PostgresDataConfig
from connector_core.sync import InMemoryStateStore, StreamSync
from connector_postgres import PostgresConnector
from connector_testing import unique_name

pytestmark = pytest.mark.integration


async def rows_of(pg: PostgresConnector, table: str) -> dict[int, dict[str, Any]]:
    return {r["order_id"]: dict(r) for r in await pg.query(f'SELECT * FROM "{table}"')}


@pytest.mark.parametrize("incremental", ["updated_at", "xmin"])
async def test_a_soft_delete_reaches_the_other_table(
    pg: PostgresConnector, postgres_database_url: str, incremental: str
) -> None:
    source, target = unique_name("src"), unique_name("dst")
    await pg.execute(
        f'CREATE TABLE "{source}" (id int PRIMARY KEY, amount text NOT NULL, '
        "updated_at timestamptz NOT NULL DEFAULT clock_timestamp(), deleted_at timestamptz);"
        f"INSERT INTO \"{source}\" (id, amount) SELECT g, g || '.50' FROM generate_series(1, 25) g"
    )
    config = PostgresDataConfig(
        postgres=postgres_database_url,
        include=[source],
        incremental=incremental,
        soft_delete_column="deleted_at",
        tables={source: {"columns": {"id": "order_id",
                                     "amount": {"field": "total", "coerce": "decimal"}}}},
    )  # fmt: skip
    state = InMemoryStateStore()
    async with ManagedPostgresData(config) as adapter:
        sync = StreamSync(
            adapter, source, pg, target=target, state=state, batch_size=10,
            deleted_field=await adapter.deleted_field(source), delete_mode="soft",
        )  # fmt: skip
        first = await sync.run()
        assert (first.created, first.records, first.batches) == (True, 25, 3)
        copied = await rows_of(pg, target)
        assert sorted(copied) == list(range(1, 26))
        assert str(copied[7]["total"]) == "7.50"
        assert "amount" not in copied[7]
        assert "id" not in copied[7]

        await pg.execute(
            f'UPDATE "{source}" SET deleted_at = now(), updated_at = clock_timestamp() WHERE id = 3'
        )
        second = await sync.run()
        assert (second.records, second.deleted) == (1, 1)
        copied = await rows_of(pg, target)
        assert copied[3]["deleted_at"] is not None  # the sink keeps the row, marked
        assert all(copied[i]["deleted_at"] is None for i in copied if i != 3)
        assert (await sync.run()).records == 0


async def test_a_soft_delete_becomes_a_delete_with_hard_mode(
    pg: PostgresConnector, postgres_database_url: str
) -> None:
    source, target = unique_name("src"), unique_name("dst")
    await pg.execute(
        f'CREATE TABLE "{source}" (id int PRIMARY KEY, name text, is_deleted boolean NOT NULL '
        "DEFAULT false, updated_at timestamptz NOT NULL DEFAULT clock_timestamp());"
        f"INSERT INTO \"{source}\" (id, name) SELECT g, 'n' || g FROM generate_series(1, 5) g"
    )
    config = PostgresDataConfig(
        postgres=postgres_database_url,
        include=[source],
        soft_delete_column="is_deleted",
        tables={source: {"columns": {"id": "order_id"}}},
    )
    async with ManagedPostgresData(config) as adapter:
        sync = StreamSync(
            adapter, source, pg, target=target, state=InMemoryStateStore(),
            deleted_field="is_deleted", delete_mode="hard",
        )  # fmt: skip
        assert (await sync.run()).records == 5
        await pg.execute(
            f'UPDATE "{source}" SET is_deleted = true, updated_at = clock_timestamp() '
            "WHERE id IN (2, 4)"
        )
        report = await sync.run()
        assert report.deleted == 2
        assert sorted(await rows_of(pg, target)) == [1, 3, 5]
