"""A sync's Kafka sink keys each message by the stream's primary key (ensure_stream tells
the connector which one): the key's forms per key serializer, and on a real broker."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connector_core import FieldType, Stream, StreamField
from connector_kafka import BytesSerializer, JsonSerializer, KafkaConnector, StringSerializer
from connector_kafka._connector import _primary_key_of

RECORD = {"id": 7, "day": dt.date(2026, 1, 2), "name": "x"}


@pytest.mark.parametrize(
    ("fields", "serializer", "key"),
    [
        (("id",), StringSerializer(), "7"),
        (("id",), BytesSerializer(), b"7"),
        (("id",), JsonSerializer(), 7),
        (("id", "day"), StringSerializer(), '{"id":7,"day":"2026-01-02"}'),
        (("id", "day"), BytesSerializer(), b'{"id":7,"day":"2026-01-02"}'),
        (("id", "day"), JsonSerializer(), {"id": 7, "day": dt.date(2026, 1, 2)}),
        (("name",), BytesSerializer(), b"x"),
    ],
)
def test_the_key_takes_the_form_its_serializer_takes(
    fields: tuple[str, ...], serializer: Any, key: Any
) -> None:
    assert _primary_key_of(RECORD, fields, serializer) == key


def test_a_null_key_field_is_no_key() -> None:
    assert _primary_key_of({"id": None}, ("id",), StringSerializer()) is None


def test_a_record_without_the_key_field_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        _primary_key_of({"name": "x"}, ("id",), StringSerializer())


def _stream(*key: str) -> Stream:
    fields = (
        StreamField(name="id", type=FieldType.INTEGER),
        StreamField(name="name", type=FieldType.STRING),
    )
    return Stream(name="items", fields=fields, primary_key=key)


@pytest.mark.integration
async def test_writes_after_ensure_stream_are_keyed_by_its_primary_key(
    kafka: KafkaConnector, unique_topic: str
) -> None:
    try:
        assert (await kafka.ensure_stream(unique_topic, _stream("id"))).created
        result = await kafka.write(unique_topic, [{"id": 1, "name": "a"}, {"name": "no id"}])
        assert (result.written, result.failed, result.errors[0].index) == (1, 1, 1)
        assert (await kafka.write(unique_topic, [{"id": 2}], key=lambda r: "own")).ok
        await kafka.ensure_stream(unique_topic, _stream())  # a stream without a key
        assert (await kafka.write(unique_topic, [{"id": 3}])).ok
        keys = [m.key async for m in kafka.read_messages(unique_topic)]
        assert keys == ["1", "own", None]
    finally:
        await kafka.delete_topic(unique_topic)
