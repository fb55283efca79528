"""Values through the real server and back, and their portable types."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from bson import Binary, Decimal128, Int64, ObjectId, Regex
from mongo_support import make_config

from connector_core import Checkpoint, FieldType
from connector_mongo import MongoConnector, portable_type
from connector_mongo._values import cast_like, from_json_safe, to_json_safe

pytestmark = pytest.mark.integration

AWARE = dt.datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=dt.UTC)
OSLO = dt.timezone(dt.timedelta(hours=2))


async def test_every_value_type_round_trips(mongo: MongoConnector, collection: str) -> None:
    oid = ObjectId()
    key = uuid.uuid4()
    document: dict[str, Any] = {
        "_id": oid,
        "text": "héllo\x00",  # NUL inside a value is fine (only keys refuse it)
        "int32": 7,
        "int64": 2**40,
        "double": 1.25,
        "bool": True,
        "null": None,
        "when": AWARE,
        "elsewhere": AWARE.astimezone(OSLO),
        "uuid": key,
        "bytes": b"\x00\xffbin",
        "nested": {"a": [1, {"b": "c"}]},
        "list": [1, "two", 3.0],
    }
    await mongo.insert_one(collection, document)
    back = await mongo.find_one(collection, {"_id": oid})
    assert back is not None
    assert back["_id"] == oid
    assert back["text"] == "héllo\x00"
    assert (back["int32"], back["int64"], back["double"], back["bool"]) == (7, 2**40, 1.25, True)
    assert back["null"] is None
    assert back["when"] == AWARE
    assert back["when"].tzinfo is not None, "datetimes come back timezone-aware"
    assert back["when"].utcoffset() == dt.timedelta(0)
    assert back["elsewhere"] == AWARE  # the same instant, in UTC
    assert back["uuid"] == key
    assert isinstance(back["uuid"], uuid.UUID)
    assert back["bytes"] == b"\x00\xffbin"
    assert back["nested"] == {"a": [1, {"b": "c"}]}
    assert back["list"] == [1, "two", 3.0]
    # The UUID is stored with the standard representation (subtype 4).
    raw = await mongo.database.get_collection(
        collection, codec_options=mongo.database.codec_options.with_options(uuid_representation=0)
    ).find_one({"_id": oid})
    assert raw is not None
    assert isinstance(raw["uuid"], Binary)
    assert raw["uuid"].subtype == 4


async def test_a_naive_datetime_is_taken_as_utc(mongo: MongoConnector, collection: str) -> None:
    await mongo.insert_one(collection, {"_id": 1, "at": AWARE.replace(tzinfo=None)})
    back = await mongo.find_one(collection, {"_id": 1})
    assert back is not None
    assert back["at"] == AWARE


@pytest.mark.requires_mongodb
async def test_decimal128_round_trips(real_mongodb_url: str, unique_collection: str) -> None:
    async with MongoConnector(make_config(real_mongodb_url)) as mongo:
        try:
            await mongo.insert_one(unique_collection, {"_id": 1, "price": Decimal128("12.345")})
            back = await mongo.find_one(unique_collection, {"_id": 1})
        finally:
            await mongo.drop_collection(unique_collection)
    assert back is not None
    assert back["price"] == Decimal128("12.345")
    assert back["price"].to_decimal() == Decimal("12.345")


@pytest.mark.requires_mongodb
async def test_a_python_decimal_is_stored_as_decimal128(
    real_mongodb_url: str, unique_collection: str
) -> None:
    async with MongoConnector(make_config(real_mongodb_url)) as mongo:
        try:
            result = await mongo.write(unique_collection, [{"_id": 1, "price": Decimal("9.99")}])
            assert result.ok, result.errors
            back = await mongo.find_one(unique_collection, {"_id": 1})
        finally:
            await mongo.drop_collection(unique_collection)
    assert back is not None
    assert back["price"] == Decimal128("9.99")


def test_the_client_encodes_python_decimals_as_decimal128() -> None:
    import bson

    from connector_mongo import MongoConfig

    options = bson.CodecOptions(type_registry=MongoConfig().client_settings()["type_registry"])
    encoded = bson.decode(bson.encode({"d": Decimal("1.10")}, codec_options=options))
    assert encoded == {"d": Decimal128("1.10")}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s", FieldType.STRING),
        (ObjectId(), FieldType.STRING),
        (1, FieldType.INTEGER),
        (Int64(1), FieldType.INTEGER),
        (2**40, FieldType.INTEGER),
        (1.5, FieldType.NUMBER),
        (Decimal128("1.5"), FieldType.DECIMAL),
        (True, FieldType.BOOLEAN),
        (AWARE, FieldType.DATETIME),
        (uuid.uuid4(), FieldType.UUID),
        (Binary(b"x" * 16, 4), FieldType.UUID),
        (b"x", FieldType.BINARY),
        ({"a": 1}, FieldType.OBJECT),
        ([1], FieldType.ARRAY),
        (None, FieldType.UNKNOWN),
        (Regex("a.*"), FieldType.UNKNOWN),
    ],
)
def test_the_portable_type_of_each_bson_value(value: Any, expected: FieldType) -> None:
    assert portable_type(value) is expected


@pytest.mark.parametrize(
    "value",
    [ObjectId(), AWARE, Decimal128("2.50"), uuid.uuid4(), b"\x00b", 5, "text", 1.5, None],
)
def test_json_safe_forms_survive_json_exactly(value: Any) -> None:
    checkpoint = Checkpoint(cursor=to_json_safe(value), key=(to_json_safe(value),))
    again = Checkpoint.model_validate_json(checkpoint.model_dump_json())
    assert from_json_safe(again.cursor) == value
    assert from_json_safe(again.key[0]) == value


def test_plain_strings_are_cast_like_the_stored_values() -> None:
    oid = ObjectId()
    assert cast_like(str(oid), ObjectId()) == oid
    assert cast_like(AWARE.isoformat(), AWARE) == AWARE
    assert cast_like("2026-03-04T05:06:07.123", AWARE) == AWARE  # no zone: UTC
    assert cast_like("12", 1) == 12
    assert cast_like("not an id", ObjectId()) == "not an id"  # left as it is
