"""StreamSync between real services: PostgreSQL, MongoDB (FerretDB) and Kafka, 100,000
records each way checked record by record; schema growth, type changes and deletes."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connector_core import SchemaChangeError
from connector_core.sync import InMemoryStateStore, StreamSync
from connector_kafka import KafkaConfig, KafkaConnector
from connector_mongo import MongoConfig, MongoConnector
from connector_postgres import PostgresConnector

pytestmark = pytest.mark.integration

N = 100_000
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def source_rows(n: int) -> list[tuple[Any, ...]]:
    # Millisecond timestamps: what BSON keeps.
    return [
        (i, f"name {i}", i * 0.5, i % 3 == 0, EPOCH + dt.timedelta(milliseconds=i))
        for i in range(1, n + 1)
    ]


def as_record(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(("id", "name", "score", "active", "updated_at"), row, strict=True))


def as_stored(record: dict[str, Any]) -> dict[str, Any]:
    return {"_id": record["id"], **{k: v for k, v in record.items() if k != "id"}}


def normal(record: Any) -> dict[str, Any]:
    """A record as comparable values: aware UTC datetimes (Mongo returns naive UTC, a
    JSON topic ISO text), nothing but the five fields."""
    out = {k: record[k] for k in ("id", "name", "score", "active", "updated_at")}
    when = out["updated_at"]
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    out["updated_at"] = when.astimezone(dt.UTC)
    return out


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[PostgresConnector]:
    schema = f"sync_{uuid.uuid4().hex[:10]}"
    connector = PostgresConnector.from_url(postgres_url, schemas=(schema,), timeout=120.0)
    async with connector:
        await connector.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield connector
        finally:
            await connector.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def mongo(mongo_url: str) -> AsyncIterator[MongoConnector]:
    config = MongoConfig.from_url(
        mongo_url, database="connector_sync_tests", id_field="id", timeout=120.0
    )
    async with MongoConnector(config) as connector:
        yield connector


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[KafkaConnector]:
    config = KafkaConfig(bootstrap_servers=kafka_bootstrap, value_format="json", timeout=120.0)
    async with KafkaConnector(config) as connector:
        yield connector


def schema_of(pg: PostgresConnector) -> str:
    return pg.config.schemas[0]


async def make_source_table(pg: PostgresConnector, table: str, n: int) -> None:
    await pg.execute(
        f'CREATE TABLE "{schema_of(pg)}"."{table}" (id bigint PRIMARY KEY, name text NOT NULL, '
        "score double precision, active boolean, updated_at timestamptz NOT NULL)"
    )
    await pg.copy_in(f"{schema_of(pg)}.{table}", source_rows(n))


async def table_rows(pg: PostgresConnector, table: str) -> list[dict[str, Any]]:
    rows = await pg.query(f'SELECT * FROM "{schema_of(pg)}"."{table}" ORDER BY id')
    return [dict(r) for r in rows]


def expected(n: int) -> list[dict[str, Any]]:
    return [normal(as_record(row)) for row in source_rows(n)]


# FerretDB (SQLite backend) takes about 0.1 s per upsert here, and more as the collection
# grows (1,000 upserts: 111 s under a load average of 7): 100,000 upserts into it do not
# fit a test run, so PostgreSQL -> MongoDB is checked on fewer records; MongoDB ->
# PostgreSQL reads 100,000 (see docs/decisions/0124).
N_MONGO_UPSERTS = 300


async def test_postgres_to_mongo(
    pg: PostgresConnector, mongo: MongoConnector, unique_collection: str
) -> None:
    await make_source_table(pg, "items", N_MONGO_UPSERTS)
    state = InMemoryStateStore()
    sync = StreamSync(pg, "items", mongo, target=unique_collection, state=state, batch_size=100)
    try:
        out = await sync.run()
        assert out.created
        assert out.records == N_MONGO_UPSERTS
        documents = sorted(
            [normal(d) async for d in mongo.read(unique_collection)], key=lambda d: d["id"]
        )
        assert documents == expected(N_MONGO_UPSERTS)
    finally:
        await mongo.drop_collection(unique_collection)


async def test_mongo_to_postgres(
    pg: PostgresConnector, mongo: MongoConnector, unique_collection: str
) -> None:
    # Stored as MongoDB stores a keyed document: the key in `_id`, which the connector's
    # `id_field="id"` hands out as `id` (insert_many is the raw operation, no mapping).
    records = [as_stored(as_record(row)) for row in source_rows(N)]
    for start in range(0, N, 50_000):
        await mongo.insert_many(unique_collection, records[start : start + 50_000])
    try:
        state = InMemoryStateStore()
        back = await StreamSync(
            mongo, unique_collection, pg, target="copy", state=state, batch_size=10_000
        ).run()
        assert back.created
        assert back.records == N
        assert [normal(r) for r in await table_rows(pg, "copy")] == expected(N)
    finally:
        await mongo.drop_collection(unique_collection)


async def test_postgres_to_kafka_and_back(
    pg: PostgresConnector, kafka: KafkaConnector, unique_topic: str
) -> None:
    await make_source_table(pg, "items", N)
    state = InMemoryStateStore()
    out = await StreamSync(
        pg, "items", kafka, target=unique_topic, state=state, batch_size=10_000
    ).run()
    try:
        assert out.created
        assert out.records == N
        messages = [normal(m) async for m in kafka.read(unique_topic)]
        assert sorted(messages, key=lambda m: m["id"]) == expected(N)
        assert len(messages) == N  # each record once
        back = await StreamSync(
            kafka, unique_topic, pg, target="copy", state=state, batch_size=10_000
        ).run()
        assert back.records == N
        assert [normal(r) for r in await table_rows(pg, "copy")] == expected(N)
    finally:
        await kafka.delete_topic(unique_topic)


async def test_a_column_the_source_adds_appears_in_the_sink(pg: PostgresConnector) -> None:
    await make_source_table(pg, "items", 10)
    state = InMemoryStateStore()
    options: dict[str, Any] = {"read_options": {"cursor_field": "updated_at"}, "state": state}
    await StreamSync(pg, "items", pg, target="copy", **options).run()
    await pg.execute(f'ALTER TABLE "{schema_of(pg)}".items ADD COLUMN colour text')
    await pg.execute(
        f"UPDATE \"{schema_of(pg)}\".items SET colour = 'red', updated_at = now() WHERE id <= 3"
    )
    report = await StreamSync(pg, "items", pg, target="copy", **options).run()
    assert report.added_fields == ("colour",)
    assert report.records == 3
    colours = [r["colour"] for r in await table_rows(pg, "copy")]
    assert colours == ["red"] * 3 + [None] * 7


async def test_an_incompatible_type_change_stops_the_stream(pg: PostgresConnector) -> None:
    await make_source_table(pg, "items", 5)
    state = InMemoryStateStore()
    options: dict[str, Any] = {"read_options": {"cursor_field": "updated_at"}, "state": state}
    await StreamSync(pg, "items", pg, target="copy", **options).run()
    await pg.execute(f'ALTER TABLE "{schema_of(pg)}".items ALTER COLUMN score TYPE text')
    await pg.execute(f"UPDATE \"{schema_of(pg)}\".items SET score = 'high', updated_at = now()")
    pg.invalidate_catalog()
    with pytest.raises(SchemaChangeError) as caught:
        await StreamSync(pg, "items", pg, target="copy", **options).run()
    assert caught.value.field == "score"
    assert (caught.value.was, caught.value.now) == ("number", "string")
    assert [r["score"] for r in await table_rows(pg, "copy")] == [0.5, 1.0, 1.5, 2.0, 2.5]


@pytest.mark.parametrize("mode", ["soft", "hard"])
async def test_deletes_propagate(pg: PostgresConnector, mongo: MongoConnector, mode: str) -> None:
    collection = f"deletes_{mode}_{uuid.uuid4().hex[:8]}"
    await make_source_table(pg, "items", 10)
    await pg.execute(f'ALTER TABLE "{schema_of(pg)}".items ADD COLUMN deleted_at timestamptz')
    state = InMemoryStateStore()
    options: dict[str, Any] = {
        "read_options": {"cursor_field": "updated_at"},
        "state": state,
        "deleted_field": "deleted_at",
        "delete_mode": mode,
        "target": collection,
    }
    try:
        await StreamSync(pg, "items", mongo, **options).run()
        await pg.execute(
            f'UPDATE "{schema_of(pg)}".items SET deleted_at = now(), updated_at = now() '
            "WHERE id IN (2, 5)"
        )
        report = await StreamSync(pg, "items", mongo, **options).run()
        assert report.deleted == 2
        documents = {d["id"]: d async for d in mongo.read(collection)}
        if mode == "hard":
            assert sorted(documents) == [1, 3, 4, 6, 7, 8, 9, 10]
        else:
            assert sorted(documents) == list(range(1, 11))
            assert sorted(i for i, d in documents.items() if d["deleted_at"] is not None) == [2, 5]
    finally:
        await mongo.drop_collection(collection)
