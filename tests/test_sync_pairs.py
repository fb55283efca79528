"""StreamSync between real services: PostgreSQL, MongoDB (FerretDB), Kafka and files,
100,000 records each way checked record by record; runs interrupted after the sink took
a batch and before its checkpoint, then resumed; message keys on the wire; schema
growth, type changes and deletes."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from connector_core import SchemaChangeError
from connector_core.sync import InMemoryStateStore, StreamReport, StreamSync
from connector_file import FileConfig, FileConnector
from connector_kafka import KafkaConfig, KafkaConnector
from connector_mongo import MongoConfig, MongoConnector
from connector_postgres import PostgresConnector
from connector_testing import CrashingStateStore, SimulatedCrashError

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


async def primary_key_of(pg: PostgresConnector, table: str) -> list[str]:
    rows = await pg.query(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = $1::regclass",
        f'"{schema_of(pg)}"."{table}"',
    )
    return [r["attname"] for r in rows]


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
        # The messages are keyed by id, so discovery names it the key of the topic.
        assert await primary_key_of(pg, "copy") == ["id"]
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


# -- interrupted runs ----------------------------------------------------------------------

B = 10_000  # records per batch in the 100,000-record pairs
CRASH_AT = 3  # the batch whose checkpoint is never stored


async def interrupted_then_resumed(
    source: Any, stream: str, sink: Any, target: str, *, n: int, batch_size: int = B
) -> StreamReport:
    """Run the sync until it dies after batch CRASH_AT was written, then run it again;
    the resumed run repeats exactly that batch (so at most one batch runs twice)."""
    state = CrashingStateStore(CRASH_AT)
    options: dict[str, Any] = {"target": target, "state": state, "batch_size": batch_size}
    with pytest.raises(SimulatedCrashError):
        await StreamSync(source, stream, sink, **options).run()
    state.fail_at = None
    report = await StreamSync(source, stream, sink, **options).run()
    assert report.resumed_from is not None
    assert report.records == n - (CRASH_AT - 1) * batch_size
    return report


@pytest.fixture
def files(tmp_path: Path) -> FileConnector:
    return FileConnector(FileConfig(root=tmp_path, primary_key=("id",)))


def write_ndjson(path: Path, n: int) -> None:
    with path.open("w") as out:
        for row in source_rows(n):
            record = as_record(row)
            out.write(json.dumps({**record, "updated_at": record["updated_at"].isoformat()}) + "\n")


async def file_records(files: FileConnector, name: str) -> list[dict[str, Any]]:
    return [normal(r) async for r in files.read(name)]


def by_id(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: r["id"])


async def test_file_to_postgres_resumed(pg: PostgresConnector, files: FileConnector) -> None:
    write_ndjson(files.config.root / "items.ndjson", N)
    async with files:
        await interrupted_then_resumed(files, "items.ndjson", pg, "copy", n=N)
    assert [normal(r) for r in await table_rows(pg, "copy")] == expected(N)
    assert await primary_key_of(pg, "copy") == ["id"]  # made from the file's stream


async def test_postgres_to_file_resumed_upserts_on_the_key(
    pg: PostgresConnector, tmp_path: Path
) -> None:
    await make_source_table(pg, "items", N)
    # No key in the file's config: the sink takes the stream's (ensure_stream), so the
    # repeated batch replaces its own records instead of adding copies.
    async with FileConnector(FileConfig(root=tmp_path)) as files:
        await interrupted_then_resumed(pg, "items", files, "out/items.ndjson", n=N)
        records = await file_records(files, "out/items.ndjson")
    assert len(records) == N
    assert by_id(records) == expected(N)


async def test_an_append_only_file_sink_repeats_one_batch_and_no_more(
    pg: PostgresConnector, tmp_path: Path
) -> None:
    await make_source_table(pg, "items", N)
    config = FileConfig(root=tmp_path, write_mode="append")
    async with FileConnector(config) as files:
        await interrupted_then_resumed(pg, "items", files, "log.ndjson", n=N)
        records = await file_records(files, "log.ndjson")
    # At least once: the batch that was written but not checkpointed is in the file
    # twice, each copy equal to the first; the last record of each key is the source.
    assert len(records) == N + B
    first = records[: CRASH_AT * B]
    again = records[CRASH_AT * B : (CRASH_AT + 1) * B]
    assert again == first[(CRASH_AT - 1) * B :]
    latest = {r["id"]: r for r in records}
    assert by_id(list(latest.values())) == expected(N)


async def test_file_to_kafka_resumed(kafka: KafkaConnector, files: FileConnector) -> None:
    write_ndjson(files.config.root / "items.ndjson", N)
    topic = f"file-items-{uuid.uuid4().hex[:8]}"
    try:
        async with files:
            await interrupted_then_resumed(files, "items.ndjson", kafka, topic, n=N)
        messages = [normal(m) async for m in kafka.read(topic)]
        # A topic is a log: the repeated batch is there twice (keyed, so compaction folds
        # it), equal to its first copy; nothing else repeats.
        assert len(messages) == N + B
        seen: dict[int, dict[str, Any]] = {}
        repeated = []
        for message in messages:
            if message["id"] in seen:
                assert message == seen[message["id"]]
                repeated.append(message["id"])
            seen[message["id"]] = message
        assert sorted(repeated) == list(range((CRASH_AT - 1) * B + 1, CRASH_AT * B + 1))
        assert by_id(list(seen.values())) == expected(N)
    finally:
        await kafka.delete_topic(topic)


async def test_kafka_to_file_resumed(
    kafka: KafkaConnector, files: FileConnector, unique_topic: str
) -> None:
    await kafka.create_topic(unique_topic, partitions=1)
    records = [
        {**as_record(row), "updated_at": as_record(row)["updated_at"].isoformat()}
        for row in source_rows(N)
    ]
    try:
        assert (await kafka.write(unique_topic, records, key="id")).ok
        async with files:
            await interrupted_then_resumed(kafka, unique_topic, files, "topic.ndjson", n=N)
            copied = await file_records(files, "topic.ndjson")
        assert len(copied) == N
        assert by_id(copied) == expected(N)
    finally:
        await kafka.delete_topic(unique_topic)


async def test_mongo_to_file_resumed(
    mongo: MongoConnector, files: FileConnector, unique_collection: str
) -> None:
    records = [as_stored(as_record(row)) for row in source_rows(N)]
    for start in range(0, N, 50_000):
        await mongo.insert_many(unique_collection, records[start : start + 50_000])
    try:
        async with files:
            await interrupted_then_resumed(mongo, unique_collection, files, "docs.ndjson", n=N)
            copied = await file_records(files, "docs.ndjson")
        assert len(copied) == N
        assert by_id(copied) == expected(N)
    finally:
        await mongo.drop_collection(unique_collection)


async def test_file_to_mongo_resumed(
    mongo: MongoConnector, files: FileConnector, unique_collection: str
) -> None:
    # FerretDB upserts are slow (decision 0124): 300 records in batches of 100.
    write_ndjson(files.config.root / "items.ndjson", N_MONGO_UPSERTS)
    try:
        async with files:
            await interrupted_then_resumed(
                files, "items.ndjson", mongo, unique_collection, n=N_MONGO_UPSERTS, batch_size=100
            )
        documents = [normal(d) async for d in mongo.read(unique_collection)]
        assert len(documents) == N_MONGO_UPSERTS
        assert by_id(documents) == expected(N_MONGO_UPSERTS)
    finally:
        await mongo.drop_collection(unique_collection)


# -- message keys --------------------------------------------------------------------------


async def test_a_kafka_sink_keys_each_message_by_the_primary_key(
    pg: PostgresConnector, kafka: KafkaConnector, kafka_bootstrap: str, unique_topic: str
) -> None:
    # Three partitions: a key decides the partition, so every version of a record lands
    # on one partition, in the order it was synced.
    await kafka.create_topic(unique_topic, partitions=3)
    await make_source_table(pg, "items", 300)
    state = InMemoryStateStore()
    options: dict[str, Any] = {
        "target": unique_topic,
        "state": state,
        "batch_size": 100,
        "read_options": {"cursor_field": "updated_at"},
    }
    consumer = AIOKafkaConsumer(
        unique_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    try:
        await StreamSync(pg, "items", kafka, **options).run()
        await pg.execute(
            f"UPDATE \"{schema_of(pg)}\".items SET name = 'v2 ' || id, updated_at = now() "
            "WHERE id % 2 = 0"
        )
        assert (await StreamSync(pg, "items", kafka, **options).run()).records == 150
        await consumer.start()
        raw: list[Any] = []
        while len(raw) < 450:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, f"only {len(raw)} of 450 messages arrived"
            raw.extend(m for messages in batch.values() for m in messages)
    finally:
        await consumer.stop()
        await kafka.delete_topic(unique_topic)
    versions: dict[bytes, list[tuple[int, int, str]]] = {}
    for message in raw:
        value = json.loads(message.value)
        assert message.key == str(value["id"]).encode()  # the key on the wire
        versions.setdefault(message.key, []).append(
            (message.partition, message.offset, value["name"])
        )
    assert len(versions) == 300
    assert len({p for vs in versions.values() for p, _, _ in vs}) > 1  # spread by key
    for key, found in versions.items():
        assert len({p for p, _, _ in found}) == 1  # one partition per key
        names = [name for _, _, name in sorted(found)]
        i = int(key)
        assert names == ([f"name {i}", f"v2 {i}"] if i % 2 == 0 else [f"name {i}"])
