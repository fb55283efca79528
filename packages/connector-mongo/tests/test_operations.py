"""Operations against the real server: streamed finds and aggregations, single writes,
bulk writes with per-operation errors, indexes, and names refused before the server."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from connector_core import (
    ConflictError,
    ErrorCode,
    InvalidRequestError,
    NotFoundError,
)
from connector_mongo import (
    DeleteOne,
    InsertOne,
    MongoConnector,
    ReplaceOne,
    UpdateOne,
)

pytestmark = pytest.mark.integration


async def test_find_streams_in_batches_with_filter_sort_projection_limit(
    mongo: MongoConnector, collection: str
) -> None:
    result = await mongo.insert_many(collection, [{"_id": i, "n": i % 5} for i in range(250)])
    assert (result.written, result.failed, result.inserted) == (250, 0, 250)
    before = mongo.stats.operations.get("find")
    found = [
        d
        async for d in mongo.find(
            collection,
            {"n": {"$gte": 3}},
            projection={"n": 1},
            sort=[("_id", -1)],
            batch_size=7,
        )
    ]
    assert [d["_id"] for d in found] == [i for i in range(249, -1, -1) if i % 5 >= 3]
    assert all(set(d) == {"_id", "n"} for d in found)
    calls = mongo.stats.operations["find"].calls - (before.calls if before else 0)
    assert calls == -(-len(found) // 7) + (1 if len(found) % 7 == 0 else 0) or calls >= 2
    limited = [d["_id"] async for d in mongo.find(collection, sort={"_id": 1}, limit=3, skip=2)]
    assert limited == [2, 3, 4]


async def test_a_find_stopped_early_closes_its_cursor(
    mongo: MongoConnector, collection: str
) -> None:
    await mongo.insert_many(collection, [{"_id": i} for i in range(50)])
    async with contextlib.aclosing(mongo.find(collection, batch_size=5)) as stream:
        async for document in stream:
            if document["_id"] >= 2:
                break
    assert await mongo.count(collection) == 50  # the connector still works


async def test_find_one_count_distinct_estimated_count(
    mongo: MongoConnector, collection: str
) -> None:
    await mongo.insert_many(collection, [{"_id": i, "k": i % 3} for i in range(9)])
    assert await mongo.find_one(collection, {"k": 2}, sort=[("_id", -1)]) == {"_id": 8, "k": 2}
    assert await mongo.find_one(collection, {"k": 7}) is None
    assert await mongo.count(collection, {"k": 1}) == 3
    assert sorted(await mongo.distinct(collection, "k")) == [0, 1, 2]
    assert await mongo.estimated_count(collection) == 9


async def test_aggregate_streams_the_pipeline(mongo: MongoConnector, collection: str) -> None:
    await mongo.insert_many(collection, [{"_id": i, "k": i % 3, "v": i} for i in range(30)])
    rows = [
        r
        async for r in mongo.aggregate(
            collection,
            [{"$group": {"_id": "$k", "total": {"$sum": "$v"}}}, {"$sort": {"_id": 1}}],
            batch_size=2,
        )
    ]
    assert rows == [{"_id": 0, "total": 135}, {"_id": 1, "total": 145}, {"_id": 2, "total": 155}]


async def test_a_bad_filter_or_pipeline_is_an_invalid_request_with_the_servers_message(
    mongo: MongoConnector, collection: str
) -> None:
    await mongo.insert_one(collection, {"_id": 1})
    with pytest.raises(InvalidRequestError) as caught:
        [d async for d in mongo.find(collection, {"$nonsense": 1})]
    assert "$nonsense" in str(caught.value)
    assert caught.value.details["code"] == 2
    with pytest.raises(InvalidRequestError) as caught:
        [d async for d in mongo.aggregate(collection, [{"$nonsense": {}}])]
    assert "$nonsense" in caught.value.details["server_message"]


async def test_single_writes(mongo: MongoConnector, collection: str) -> None:
    new_id = await mongo.insert_one(collection, {"name": "ann", "n": 1})
    assert (await mongo.find_one(collection, {"_id": new_id}))["name"] == "ann"  # type: ignore[index]
    updated = await mongo.update_one(collection, {"_id": new_id}, {"$inc": {"n": 1}})
    assert (updated.matched, updated.modified, updated.upserted_id) == (1, 1, None)
    upserted = await mongo.update_one(collection, {"_id": "bob"}, {"$set": {"n": 5}}, upsert=True)
    assert upserted.upserted_id == "bob"
    many = await mongo.update_many(collection, {}, {"$set": {"seen": True}})
    assert many.matched == 2
    replaced = await mongo.replace_one(collection, {"_id": "bob"}, {"n": 6})
    assert replaced.modified == 1
    assert await mongo.find_one(collection, {"_id": "bob"}) == {"_id": "bob", "n": 6}
    after = await mongo.find_one_and_update(collection, {"_id": "bob"}, {"$inc": {"n": 1}})
    assert after == {"_id": "bob", "n": 7}
    before = await mongo.find_one_and_update(
        collection, {"_id": "bob"}, {"$inc": {"n": 1}}, return_document="before"
    )
    assert before == {"_id": "bob", "n": 7}
    assert (
        await mongo.find_one_and_update(collection, {"_id": "nobody"}, {"$set": {"n": 1}}) is None
    )
    assert await mongo.delete_one(collection, {"_id": "bob"}) == 1
    assert await mongo.delete_many(collection, {}) == 1
    assert await mongo.count(collection) == 0


async def test_a_duplicate_key_is_a_conflict(mongo: MongoConnector, collection: str) -> None:
    await mongo.insert_one(collection, {"_id": "k1"})
    with pytest.raises(ConflictError) as caught:
        await mongo.insert_one(collection, {"_id": "k1"})
    assert caught.value.details["code"] == 11000
    assert not caught.value.transient
    assert caught.value.__cause__ is not None


async def test_an_unordered_bulk_write_reports_exactly_the_failures(
    mongo: MongoConnector, collection: str
) -> None:
    await mongo.insert_one(collection, {"_id": 2})
    operations: list[Any] = [
        InsertOne({"_id": 1}),
        InsertOne({"_id": 2}),  # exists already
        InsertOne({"_id": 3}),
        InsertOne({"_id": 3}),  # a duplicate within the batch
        UpdateOne({"_id": 1}, {"$set": {"x": 1}}),
        ReplaceOne({"_id": 9}, {"y": 1}, upsert=True),
        DeleteOne({"_id": 2}),
    ]
    result = await mongo.bulk_write(collection, operations, ordered=False)
    assert (result.written, result.failed) == (5, 2)
    assert [(e.index, e.code) for e in result.errors] == [
        (1, ErrorCode.CONFLICT),
        (3, ErrorCode.CONFLICT),
    ]
    assert [e.key for e in result.errors] == [2, 3]
    assert (result.inserted, result.modified, result.upserted, result.deleted) == (2, 1, 1, 1)
    # The upsert's _id; its index is 5 on MongoDB, FerretDB 1.x numbers upserts within
    # each update command from 0.
    assert list(result.upserted_ids.values()) == [9]
    assert sorted([d["_id"] async for d in mongo.find(collection)]) == [1, 3, 9]


async def test_an_ordered_bulk_write_reports_the_rest_as_not_attempted(
    mongo: MongoConnector, collection: str
) -> None:
    await mongo.insert_one(collection, {"_id": 2})
    operations = [InsertOne({"_id": i}) for i in (1, 2, 3, 4)]
    result = await mongo.bulk_write(collection, operations, ordered=True)
    assert (result.written, result.failed) == (1, 3)
    assert [e.index for e in result.errors] == [1, 2, 3]
    assert "not attempted" in result.errors[1].message
    assert "not attempted" not in result.errors[0].message
    assert sorted([d["_id"] async for d in mongo.find(collection)]) == [1, 2]


async def test_bulk_write_refuses_what_is_not_an_operation(
    mongo: MongoConnector, collection: str
) -> None:
    with pytest.raises(InvalidRequestError, match="operation #1"):
        await mongo.bulk_write(collection, [InsertOne({}), {"insertOne": {}}])  # type: ignore[list-item]
    assert (await mongo.bulk_write(collection, [])).written == 0


async def test_indexes_unique_compound_listed_and_dropped(
    mongo: MongoConnector, collection: str
) -> None:
    await mongo.insert_many(
        collection, [{"_id": i, "email": f"u{i}@x", "a": i, "b": -i} for i in range(3)]
    )
    unique = await mongo.create_index(collection, "email", unique=True)
    compound = await mongo.create_index(collection, [("a", 1), ("b", -1)], name="a_b")
    assert compound == "a_b"
    found = {i.name: i for i in await mongo.list_indexes(collection)}
    assert found[unique].unique
    assert found[unique].fields == ("email",)
    assert found["a_b"].keys == (("a", 1), ("b", -1))
    assert "_id_" in found
    with pytest.raises(ConflictError):
        await mongo.insert_one(collection, {"email": "u1@x"})
    await mongo.drop_index(collection, "a_b")
    assert "a_b" not in {i.name for i in await mongo.list_indexes(collection)}
    with pytest.raises(NotFoundError):
        await mongo.drop_index(collection, "a_b")


@pytest.mark.requires_mongodb
async def test_a_ttl_index_is_created(real_mongodb_url: str, unique_collection: str) -> None:
    from mongo_support import make_config

    async with MongoConnector(make_config(real_mongodb_url)) as connector:
        try:
            name = await connector.create_index(unique_collection, "created", expire_after=60)
            found = {i.name: i for i in await connector.list_indexes(unique_collection)}
            assert found[name].expire_after == 60
        finally:
            await connector.drop_collection(unique_collection)


@pytest.mark.parametrize(
    "name",
    ["", "$cmd", "a$b", "a\x00b", "system.users", ".x", "x.", "n" * 300, 42, "\ud800"],
)
async def test_invalid_collection_names_never_reach_the_server(
    mongo: MongoConnector, name: Any
) -> None:
    before = mongo.stats.calls
    calls: list[Any] = [
        lambda: mongo.find_one(name),
        lambda: mongo.insert_one(name, {"x": 1}),
        lambda: mongo.count(name),
        lambda: mongo.bulk_write(name, [InsertOne({})]),
        lambda: mongo.create_index(name, "x"),
        lambda: mongo.write(name, [{"x": 1}]),
        lambda: mongo.drop_collection(name),
    ]
    for call in calls:
        with pytest.raises(InvalidRequestError, match="invalid collection name"):
            await call()
    with pytest.raises(InvalidRequestError):
        mongo.find(name)
    with pytest.raises(InvalidRequestError, match="filter must be a mapping"):
        mongo.find("fine", "status = 'paid'")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        mongo.read(name)
    assert mongo.stats.calls == before, "a call reached the road"


async def test_without_transactions_the_server_says_so_typed(
    mongo: MongoConnector, collection: str
) -> None:
    # FerretDB 1.x has no transactions: the block fails with the server's reason, is
    # aborted, and the connector goes on outside it.
    with pytest.raises(InvalidRequestError, match="startTransaction"):
        async with mongo.transaction():
            await mongo.insert_one(collection, {"_id": 1})
    assert mongo._session() is None
    await mongo.insert_one(collection, {"_id": 2})
    assert await mongo.count(collection) == 1


async def test_without_change_streams_the_server_says_so_typed(
    mongo: MongoConnector, collection: str
) -> None:
    with pytest.raises(InvalidRequestError, match="changeStream"):
        async with mongo.watch(collection) as stream:
            await anext(stream)


async def test_insert_many_reports_each_rejected_document(
    mongo: MongoConnector, collection: str
) -> None:
    await mongo.insert_one(collection, {"_id": 2})
    documents = [{"_id": i} for i in (1, 2, 3, 2, 4)]
    unordered = await mongo.insert_many(collection, documents, ordered=False)
    assert (unordered.written, unordered.failed) == (3, 2)
    assert [(e.index, e.code, e.key) for e in unordered.errors] == [
        (1, ErrorCode.CONFLICT, 2),
        (3, ErrorCode.CONFLICT, 2),
    ]
    ordered = await mongo.insert_many(collection, [{"_id": 5}, {"_id": 1}, {"_id": 6}])
    assert (ordered.written, ordered.failed) == (1, 2)
    assert [e.index for e in ordered.errors] == [1, 2]
    with_ids = [{"n": 1}, {"n": 2}]
    assert (await mongo.insert_many(collection, with_ids)).written == 2
    assert all("_id" in d for d in with_ids), "the driver sets a missing _id in place"
    with pytest.raises(InvalidRequestError, match="document #1"):
        await mongo.insert_many(collection, [{"_id": 7}, ("not", "a", "dict")])  # type: ignore[list-item]
