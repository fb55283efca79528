"""The capability contracts (Readable, Writable, Discoverable) against the real server,
and what they do beyond the suites: one cursor per read, JSON checkpoints of ObjectIds
and dates, nested and multi-typed fields, indexes in the catalog."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from bson import ObjectId
from mongo_support import make_config
from pymongo import monitoring

from connector_core import Checkpoint, FieldType, NotFoundError
from connector_mongo import CollectionStream, MongoConfig, MongoConnector
from connector_testing import (
    DiscoverableContractTests,
    ReadableContractTests,
    WritableContractTests,
    unique_name,
)

pytestmark = pytest.mark.integration


class StreamFixtures:
    connector_class: Any = MongoConnector

    @pytest.fixture
    def config(self, mongo_url: str) -> MongoConfig:
        # The suites' records carry their key as "id": _id goes by that name.
        return make_config(mongo_url, database=unique_name("cap"), id_field="id")

    @pytest.fixture
    def read_options(self) -> dict[str, Any]:
        return {"cursor_field": "updated_at"}

    @pytest.fixture
    async def make_stream(self, connected: MongoConnector) -> AsyncIterator[Any]:
        async def make(connector: MongoConnector, records: Sequence[dict[str, Any]]) -> str:
            name = unique_name("s")
            await connector.command({"create": name})
            if records:
                result = await connector.write(name, records)
                assert result.ok, result.errors
            return name

        yield make
        await connected.client.drop_database(connected.config.database)


class TestMongoReadable(StreamFixtures, ReadableContractTests):
    pass


class TestMongoWritable(StreamFixtures, WritableContractTests):
    @pytest.fixture
    def rejected_record(self) -> dict[str, Any]:
        # BSON integers stop at 64 bits: the record cannot be stored.
        return {"id": 3, "updated_at": 2**70, "name": "r3"}


class TestMongoDiscoverable(StreamFixtures, DiscoverableContractTests):
    pass


class CommandNames(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_read_is_one_cursor_not_a_query_per_page(
    mongo_url: str, unique_collection: str
) -> None:
    commands = CommandNames()
    async with MongoConnector(make_config(mongo_url), event_listeners=[commands]) as mongo:
        try:
            await mongo.insert_many(unique_collection, [{"_id": i, "c": i % 3} for i in range(100)])
            commands.names.clear()
            seen = [
                d["_id"]
                async for d in mongo.read(unique_collection, cursor_field="c", batch_size=10)
            ]
            asked = list(commands.names)
        finally:
            await mongo.drop_collection(unique_collection)
    assert seen == sorted(range(100), key=lambda i: (i % 3, i))
    assert asked.count("find") == 1, asked
    assert asked.count("getMore") >= 9, asked
    assert set(asked) == {"find", "getMore"}, "nothing else is asked per read"


async def test_checkpoints_of_object_ids_and_dates_survive_json(
    mongo: MongoConnector, collection: str
) -> None:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = sorted(ObjectId() for _ in range(30))
    await mongo.insert_many(
        collection,
        [{"_id": oid, "at": base + dt.timedelta(hours=i % 4)} for i, oid in enumerate(ids)],
    )
    seen: list[ObjectId] = []
    saved: str | None = None
    for _ in range(20):
        since = Checkpoint.model_validate_json(saved) if saved else None
        reader = mongo.read(collection, cursor_field="at", since=since, limit=4)
        page = [d async for d in reader]
        if not page:
            break
        seen += [d["_id"] for d in page]
        assert reader.checkpoint is not None
        saved = reader.checkpoint.model_dump_json()
        assert "$oid" in saved
        assert "$date" in saved
    assert sorted(seen) == ids
    assert len(seen) == len(set(seen))


async def test_a_checkpoint_of_plain_strings_is_cast_to_the_stored_types(
    mongo: MongoConnector, collection: str
) -> None:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = sorted(ObjectId() for _ in range(6))
    await mongo.insert_many(collection, [{"_id": oid, "at": base} for oid in ids])
    since = Checkpoint(cursor=base.isoformat(), key=(str(ids[2]),))
    rest = [d["_id"] async for d in mongo.read(collection, cursor_field="at", since=since)]
    assert rest == ids[3:]


async def test_discover_infers_nested_and_multi_typed_fields_and_lists_indexes(
    mongo: MongoConnector, collection: str
) -> None:
    await mongo.insert_many(
        collection,
        [
            {
                "_id": 1,
                "address": {"city": "Oslo"},
                "tags": ["a"],
                "v": 1,
                "w": 1,
                "at": dt.datetime.now(dt.UTC),
            },
            {"_id": 2, "address": {"city": "Rome"}, "tags": [], "v": "one", "w": 1.5},
            {"_id": 3, "v": None, "w": 2},
        ],
    )
    await mongo.create_index(collection, "v")
    stream = (await mongo.discover()).stream(collection)
    assert isinstance(stream, CollectionStream)
    fields = {f.name: f for f in stream.fields}
    assert stream.primary_key == ("_id",)
    assert fields["_id"].type is FieldType.INTEGER
    assert not fields["_id"].nullable
    assert fields["address"].type is FieldType.OBJECT
    assert fields["address"].nullable  # missing from one document
    assert (fields["tags"].type, fields["tags"].item_type) == (FieldType.ARRAY, FieldType.STRING)
    assert fields["v"].type is FieldType.JSON
    assert fields["v"].native_type == "int|string"
    assert fields["w"].type is FieldType.NUMBER
    assert fields["at"].type is FieldType.DATETIME
    assert stream.estimated_count == 3
    assert stream.sampled == 3
    assert {i.name for i in stream.indexes} == {"_id_", "v_1"}


async def test_reading_or_sampling_a_missing_collection_is_not_found(
    mongo: MongoConnector,
) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        [d async for d in mongo.read("no_such_collection_9a")]
    with pytest.raises(NotFoundError):
        await mongo.sample("no_such_collection_9a")


async def test_write_upserts_by_id_and_inserts_records_without_one(
    mongo: MongoConnector, collection: str
) -> None:
    first = await mongo.write(collection, [{"_id": 1, "v": 1}, {"v": 2}])
    assert (first.written, first.failed) == (2, 0)
    again = await mongo.write(collection, [{"_id": 1, "v": 10}, {"bad\x00key": 1}])
    assert (again.written, again.failed) == (1, 1)
    assert again.errors[0].index == 1
    assert await mongo.find_one(collection, {"_id": 1}) == {"_id": 1, "v": 10}
    assert await mongo.count(collection) == 2


async def test_a_read_by_id_alone_resumes_after_its_checkpoint(
    mongo: MongoConnector, collection: str
) -> None:
    await mongo.insert_many(collection, [{"_id": i} for i in range(10)])
    first = mongo.read(collection, cursor_field="_id", limit=4)
    assert [d["_id"] async for d in first] == [0, 1, 2, 3]
    assert first.checkpoint == Checkpoint(cursor=3)
    rest = mongo.read(collection, cursor_field="_id", since=first.checkpoint)
    assert [d["_id"] async for d in rest] == [4, 5, 6, 7, 8, 9]
    keyed = mongo.read(collection, since=Checkpoint(key=(7,)))  # no cursor: by _id
    assert [d["_id"] async for d in keyed] == [8, 9]
