"""One behaviour suite for both PostgreSQL data clients (mock and managed on the real
PostgreSQL): mapping, table selection, incremental reads in both modes, and the events of
sync_table. The mock cannot drift from the real thing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from adapters_postgres_data_fixtures import Tables

from connector_adapters import InMemoryEventPublisher, InMemoryStateStore
from connector_adapters.postgres_data import (
    ManagedPostgresData,
    MockPostgresData,
    PostgresDataConfig,
    sync_table,
)
from connector_core import Checkpoint, ConfigError, FieldType, NotFoundError, SerializationError
from connector_testing import MemoryConfig, MemoryConnector, unique_name

F = FieldType
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
Client = ManagedPostgresData | MockPostgresData
OpenClient = Callable[..., Awaitable[tuple[Client, Tables]]]


@pytest.fixture(params=["mock", pytest.param("managed", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None for the mock; the real PostgreSQL's database for the managed client."""
    if request.param == "managed":
        url: str = request.getfixturevalue("postgres_database_url")
        return url
    return None


@pytest.fixture
async def open_client(database_url: str | None) -> AsyncIterator[OpenClient]:
    opened: list[Client] = []

    async def open_(**fields: Any) -> tuple[Client, Tables]:
        client: Client
        if database_url is not None:
            client = ManagedPostgresData(PostgresDataConfig(postgres=database_url, **fields))
        else:
            client = MockPostgresData(PostgresDataConfig(**fields))
        await client.connect()
        opened.append(client)
        return client, Tables(client)

    yield open_
    for client in opened:
        await client.disconnect()


async def read_all(client: Client, table: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [dict(r) async for r in client.read(table, **kwargs)]


def sink() -> MemoryConnector:
    return MemoryConnector(MemoryConfig(store=uuid.uuid4().hex))


async def test_mapping_renames_coerces_and_drops(open_client: OpenClient) -> None:
    table = unique_name("orders")
    mapping = {
        "entity_type": "order",
        "unmapped": "drop",
        "columns": {
            "id": "order_id",
            "amount": {"field": "total", "coerce": "decimal"},
            "flag": {"field": "active", "coerce": "bool"},
            "extra": {"coerce": "json"},
            "updated_at": "changed_at",
        },
    }
    client, tables = await open_client(tables={table: mapping})
    fields = {"id": F.INTEGER, "amount": F.STRING, "flag": F.STRING, "extra": F.STRING,
              "secret": F.STRING, "updated_at": F.DATETIME}  # fmt: skip
    await tables.create(table, fields, [
        {"id": 1, "amount": "9.90", "flag": "yes", "extra": '{"a": [1]}', "secret": "x",
         "updated_at": T0},
        {"id": 2, "amount": None, "flag": "0", "extra": "3", "secret": "y", "updated_at": T0},
    ])  # fmt: skip
    assert await read_all(client, table) == [
        {"order_id": 1, "total": Decimal("9.90"), "active": True, "extra": {"a": [1]},
         "changed_at": T0},
        {"order_id": 2, "total": None, "active": False, "extra": 3, "changed_at": T0},
    ]  # fmt: skip
    stream = (await client.discover()).stream(table)
    assert {f.name: f.type for f in stream.fields} == {
        "order_id": F.INTEGER, "total": F.DECIMAL, "active": F.BOOLEAN, "extra": F.JSON,
        "changed_at": F.DATETIME,
    }  # fmt: skip
    assert stream.primary_key == ("order_id",)
    assert stream.cursor_field == "changed_at"
    assert len(await client.sample(table, 5)) == 2


async def test_include_and_exclude_choose_the_tables(open_client: OpenClient) -> None:
    prefix = unique_name("sel")
    client, tables = await open_client(include=[f"{prefix}_*"], exclude=[f"public.{prefix}_b"])
    for suffix in ("a", "b", "c"):
        await tables.create(f"{prefix}_{suffix}", {"id": F.INTEGER, "updated_at": F.INTEGER})
    await tables.create(unique_name("other"), {"id": F.INTEGER, "updated_at": F.INTEGER})
    assert await client.tables() == (f"{prefix}_a", f"{prefix}_c")
    assert [s.name for s in (await client.discover()).streams] == [f"{prefix}_a", f"{prefix}_c"]
    with pytest.raises(NotFoundError, match="not exposed"):
        await read_all(client, f"{prefix}_b")


async def test_updated_at_reads_what_changed_after_the_checkpoint(
    open_client: OpenClient,
) -> None:
    table = unique_name("items")
    client, tables = await open_client()
    fields = {"id": F.INTEGER, "name": F.STRING, "updated_at": F.DATETIME}
    rows = [{"id": i, "name": f"n{i}", "updated_at": T0} for i in range(1, 4)]
    await tables.create(table, fields, rows)
    reader = client.read(table)
    assert [r["id"] async for r in reader] == [1, 2, 3]
    saved = reader.checkpoint
    assert saved is not None
    later = T0 + dt.timedelta(seconds=1)
    await tables.upsert(table, [{"id": 2, "name": "changed", "updated_at": later}])
    since = Checkpoint.model_validate_json(saved.model_dump_json())  # what a state store keeps
    assert await read_all(client, table, since=since) == [
        {"id": 2, "name": "changed", "updated_at": later}
    ]


async def test_xmin_reads_rows_written_since_the_last_pass(open_client: OpenClient) -> None:
    table = unique_name("plain")  # no updated-at column
    client, tables = await open_client(incremental="xmin")
    await tables.create(table, {"id": F.INTEGER, "name": F.STRING},
                        [{"id": i, "name": f"n{i}"} for i in range(1, 5)])  # fmt: skip
    first = client.read(table)
    assert [r["id"] async for r in first] == [1, 2, 3, 4]
    done = Checkpoint.model_validate_json(first.checkpoint.model_dump_json())  # type: ignore[union-attr]
    nothing = client.read(table, since=done)
    assert [r async for r in nothing] == []
    await tables.upsert(table, [{"id": 3, "name": "changed"}, {"id": 9, "name": "new"}])
    again = client.read(table, since=nothing.checkpoint)
    assert [r async for r in again] == [{"id": 3, "name": "changed"}, {"id": 9, "name": "new"}]
    assert [r async for r in client.read(table, since=again.checkpoint)] == []


async def test_an_xmin_pass_stopped_mid_way_resumes_after_its_last_row(
    open_client: OpenClient,
) -> None:
    table = unique_name("plain")
    client, tables = await open_client(incremental="xmin")
    await tables.create(table, {"id": F.INTEGER, "name": F.STRING},
                        [{"id": i, "name": f"n{i}"} for i in range(1, 6)])  # fmt: skip
    part = client.read(table, limit=2)
    assert [r["id"] async for r in part] == [1, 2]
    mid = Checkpoint.model_validate_json(part.checkpoint.model_dump_json())  # type: ignore[union-attr]
    await tables.upsert(table, [{"id": 1, "name": "changed while stopped"}])
    rest = client.read(table, since=mid)
    assert [r["id"] async for r in rest] == [3, 4, 5]
    # Row 1 changed after the pass began: the next pass reads it.
    assert [r async for r in client.read(table, since=rest.checkpoint)] == [
        {"id": 1, "name": "changed while stopped"}
    ]


@pytest.mark.parametrize("incremental", ["updated_at", "xmin"])
async def test_sync_table_publishes_created_updated_and_deleted(
    open_client: OpenClient, incremental: str
) -> None:
    table = unique_name("people")
    client, tables = await open_client(
        incremental=incremental,
        soft_delete_column="deleted",
        tables={table: {"entity_type": "person", "columns": {"name": "full_name"}}},
    )
    fields = {"id": F.INTEGER, "name": F.STRING, "deleted": F.BOOLEAN, "updated_at": F.INTEGER}
    await tables.create(table, fields, [
        {"id": 1, "name": "Ada", "deleted": False, "updated_at": 1},
        {"id": 2, "name": "Eve", "deleted": False, "updated_at": 1},
    ])  # fmt: skip
    target, publisher, state = sink(), InMemoryEventPublisher(), InMemoryStateStore()
    async with target:

        async def run() -> list[tuple[str, str]]:
            publisher.clear()
            report = await sync_table(client, table, target, publisher=publisher, state=state)
            assert report.completed
            return [(e.type, e.entity_id) for e in publisher.events]

        assert await run() == [("person.created", "1"), ("person.created", "2")]
        assert publisher.events[0].source_system == "postgres"
        assert publisher.events[0].payload["full_name"] == "Ada"
        await tables.upsert(table, [
            {"id": 1, "name": "Ada L.", "deleted": False, "updated_at": 2},
            {"id": 2, "name": "Eve", "deleted": True, "updated_at": 2},
        ])  # fmt: skip
        assert await run() == [("person.updated", "1"), ("person.deleted", "2")]
        assert await run() == []  # nothing changed: no event
        stored = {r["id"]: r async for r in target.read(table)}
        assert stored[1]["full_name"] == "Ada L."
        assert stored[2]["deleted"] is True  # a soft delete: the sink keeps the row


async def test_a_value_its_coercion_refuses_fails_that_row_alone(open_client: OpenClient) -> None:
    table = unique_name("bad")
    client, tables = await open_client(tables={table: {"columns": {"n": {"coerce": "int"}}}})
    await tables.create(table, {"id": F.INTEGER, "n": F.STRING, "updated_at": F.INTEGER},
                        [{"id": 1, "n": "7", "updated_at": 1},
                         {"id": 2, "n": "seven", "updated_at": 1}])  # fmt: skip
    with pytest.raises(SerializationError, match=r"\.n: a str value cannot be coerced to int"):
        await read_all(client, table)
    target, publisher, state = sink(), InMemoryEventPublisher(), InMemoryStateStore()
    async with target:
        report = await sync_table(client, table, target, publisher=publisher, state=state)
    assert (report.completed, report.failed, report.created) == (False, 1, 1)
    assert [e.entity_id for e in publisher.events] == ["1"]


async def test_a_mapping_that_does_not_fit_the_table_names_the_fields(
    open_client: OpenClient,
) -> None:
    table = unique_name("misfit")
    client, tables = await open_client(
        soft_delete_column="gone", tables={table: {"columns": {"nme": "name"}}}
    )
    await tables.create(table, {"id": F.INTEGER, "name": F.STRING})
    with pytest.raises(ConfigError) as info:
        await read_all(client, table)
    assert set(info.value.fields) == {
        f"tables.{table}.columns.nme",
        "cursor_column",
        "soft_delete_column",
    }
    assert "known: id, name" in str(info.value)
