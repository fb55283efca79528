"""Producing and consuming against the real broker: round trips, serializers,
per-message results, and when a consumer commits."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from pydantic import BaseModel

from connector_core import (
    ErrorCode,
    InvalidRequestError,
    NotFoundError,
    SerializationError,
)
from connector_kafka import (
    BytesSerializer,
    JsonSerializer,
    KafkaConnector,
    KafkaConsumer,
    KafkaMessage,
    OutgoingMessage,
    PydanticSerializer,
    StringSerializer,
)
from connector_testing import unique_name

pytestmark = pytest.mark.integration

WAIT = 60  # seconds any wait for messages may take on a loaded machine


async def take(consumer: KafkaConsumer[Any, Any], n: int) -> list[KafkaMessage[Any, Any]]:
    """The next ``n`` messages of ``consumer``."""
    found: list[KafkaMessage[Any, Any]] = []
    async with asyncio.timeout(WAIT):
        async for message in consumer:
            found.append(message)
            if len(found) == n:
                break
    return found


async def test_round_trip_with_keys_headers_and_timestamps(
    kafka: KafkaConnector, topic: str
) -> None:
    stamp = dt.datetime(2026, 5, 4, 3, 2, 1, 123000, tzinfo=dt.UTC)
    reports = [
        await kafka.produce(topic, {"n": 1}, key="a", headers={"trace": "t-1"}, timestamp=stamp),
        await kafka.produce(topic, {"n": 2}, key="b", headers=[("h", b"\x00\x01"), ("h", "two")]),
        await kafka.produce(topic, None, key="a"),  # a tombstone
    ]
    assert [r.offset for r in reports] == [0, 1, 2]
    assert {r.partition for r in reports} == {0}
    assert reports[0].timestamp == stamp
    async with kafka.consume(topic, group_id=unique_name("g")) as consumer:
        got = await take(consumer, 3)
    assert [(m.offset, m.key, m.value) for m in got] == [
        (0, "a", {"n": 1}),
        (1, "b", {"n": 2}),
        (2, "a", None),
    ]
    assert got[0].headers == (("trace", b"t-1"),)
    assert got[0].timestamp == stamp
    assert got[1].headers == (("h", b"\x00\x01"), ("h", b"two"))
    assert got[1].header("h") == b"two"
    assert got[1].header("missing") is None
    assert got[2].timestamp is not None


class Order(BaseModel):
    id: int
    item: str
    at: dt.datetime


@pytest.mark.parametrize(
    ("serializer", "value"),
    [
        (BytesSerializer(), b"\x00raw\xff"),
        (StringSerializer(), "héllo ✓"),
        (JsonSerializer(), {"id": 7, "tags": ["a"], "nested": {"ok": True}}),
        (
            PydanticSerializer(Order),
            Order(id=1, item="tea", at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        ),
    ],
    ids=["bytes", "str", "json", "pydantic"],
)
async def test_each_serializer_round_trips(
    kafka: KafkaConnector, topic: str, serializer: Any, value: Any
) -> None:
    key = {"tenant": 3}
    await kafka.produce(
        topic, value, key=key, key_serializer=JsonSerializer(), value_serializer=serializer
    )
    async with kafka.consume(
        topic,
        group_id=unique_name("g"),
        key_serializer=JsonSerializer(),
        value_serializer=serializer,
    ) as consumer:
        (message,) = await take(consumer, 1)
    assert message.key == key
    assert message.value == value


async def test_a_value_its_serializer_refuses_is_a_serialization_error(
    kafka: KafkaConnector, topic: str
) -> None:
    with pytest.raises(SerializationError, match="value"):
        await kafka.produce(topic, {1, 2} | {object()})  # type: ignore[operator]
    with pytest.raises(SerializationError, match="key"):
        await kafka.produce(topic, {"ok": 1}, key=42)  # string keys
    with pytest.raises(SerializationError):
        await kafka.produce(topic, {"nan": float("nan")})
    with pytest.raises(InvalidRequestError):
        await kafka.produce(topic, None)  # neither key nor value


async def test_produce_many_reports_exactly_what_was_acked(
    kafka: KafkaConnector, topic: str
) -> None:
    messages: list[Any] = [
        {"i": 0},
        OutgoingMessage({"i": 1}, key="k1", headers={"x": "1"}),
        {"i": 2, "blob": "x" * 2_000_000},  # larger than max_request_size
        {"i": 3},
        {"i": 4, "bad": object()},  # not JSON
        OutgoingMessage({"i": 5}, partition=9),  # the topic has one partition
        OutgoingMessage(None),  # neither key nor value
        OutgoingMessage({"i": 7}, timestamp=dt.datetime(2026, 1, 1)),  # naive datetime
        {"i": 8},
    ]
    result = await kafka.produce_many(topic, messages)
    failed = {e.index: e.code for e in result.errors}
    assert failed == {
        2: ErrorCode.INVALID_REQUEST,
        4: ErrorCode.SERIALIZATION,
        5: ErrorCode.NOT_FOUND,
        6: ErrorCode.INVALID_REQUEST,
        7: ErrorCode.INVALID_REQUEST,
    }
    assert (result.written, result.failed) == (4, 5)
    stored = [record async for record in kafka.read(topic)]
    assert stored == [{"i": 0}, {"i": 1}, {"i": 3}, {"i": 8}]


async def test_produce_many_of_bare_bytes_reports_exactly_what_was_acked(
    kafka: KafkaConnector, topic: str
) -> None:
    """Bare bytes through the bytes serializer take produce_many's fast path (nothing
    built per message): per-message results hold there too."""
    raw = BytesSerializer()
    values = [b"m0", b"m1", b"x" * 2_000_000, b"m3"]  # #2: larger than max_request_size
    result = await kafka.produce_many(topic, values, value_serializer=raw)
    assert {e.index: e.code for e in result.errors} == {2: ErrorCode.INVALID_REQUEST}
    assert (result.written, result.failed) == (3, 1)
    stored = [m.value async for m in kafka.read_messages(topic, value_serializer=raw)]
    assert stored == [b"m0", b"m1", b"m3"]
    assert (await kafka.produce_many(topic, [], value_serializer=raw)).written == 0


async def test_produce_refusals_are_typed(kafka: KafkaConnector, topic: str) -> None:
    with pytest.raises(InvalidRequestError, match="MessageSizeTooLarge"):
        await kafka.produce(topic, b"x" * 2_000_000, value_serializer=BytesSerializer())
    with pytest.raises(NotFoundError, match="partition 3"):
        await kafka.produce(topic, {"a": 1}, partition=3)
    with pytest.raises(InvalidRequestError, match="invalid topic name"):
        await kafka.produce("no spaces allowed", {"a": 1})


@pytest.fixture
async def ten(kafka: KafkaConnector, topic: str) -> str:
    result = await kafka.produce_many(topic, [{"i": i} for i in range(10)])
    assert result.ok
    return topic


async def test_leaving_the_block_commits_the_message_in_hand(
    kafka: KafkaConnector, ten: str
) -> None:
    group = unique_name("g")
    async with kafka.consume(ten, group_id=group) as first:
        assert [m.value["i"] for m in await take(first, 5)] == [0, 1, 2, 3, 4]
    async with kafka.consume(ten, group_id=group) as second:
        assert [m.value["i"] for m in await take(second, 5)] == [5, 6, 7, 8, 9]


async def test_a_failure_leaves_the_message_in_hand_for_the_next_member(
    kafka: KafkaConnector, ten: str
) -> None:
    group = unique_name("g")

    async def break_at_three() -> None:
        async with kafka.consume(ten, group_id=group) as first:
            async for message in first:
                if message.value["i"] == 3:
                    raise RuntimeError("handler broke")

    with pytest.raises(RuntimeError, match="handler broke"):
        await break_at_three()
    async with kafka.consume(ten, group_id=group) as second:
        assert [m.value["i"] for m in await take(second, 2)] == [3, 4]


async def test_manual_commit(kafka: KafkaConnector, ten: str) -> None:
    group = unique_name("g")
    async with kafka.consume(ten, group_id=group, auto_commit=False) as first:
        got = await take(first, 6)
        await first.commit(got[2])  # done up to #2 only
    async with kafka.consume(ten, group_id=group, auto_commit=False) as second:
        assert [m.value["i"] for m in await take(second, 2)] == [3, 4]
        # Never committed: a third member starts from #3 as well.
    lag = {(p.topic, p.partition): p.position for p in await kafka.consumer_group_lag(group)}
    assert lag == {(ten, 0): 3}


async def test_without_a_group_nothing_is_committed(kafka: KafkaConnector, ten: str) -> None:
    async with kafka.consume(ten, group_id=None) as consumer:
        assert [m.value["i"] for m in await take(consumer, 3)] == [0, 1, 2]
        with pytest.raises(InvalidRequestError, match="group"):
            await consumer.commit()


async def test_seek_pause_resume_and_lag(kafka: KafkaConnector, make_topic: Any) -> None:
    topic = await make_topic(partitions=2)
    early = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    late = early + dt.timedelta(hours=1)
    batch = [
        OutgoingMessage({"p": p, "i": i}, partition=p, timestamp=early if i < 2 else late)
        for p in (0, 1)
        for i in range(4)
    ]
    assert (await kafka.produce_many(topic, batch)).ok
    async with kafka.consume(topic, group_id=unique_name("g")) as consumer:
        first = (await take(consumer, 1))[0]
        assert consumer.assignment() == {(topic, 0), (topic, 1)}
        lag = {p.partition: p for p in await consumer.lag()}
        assert lag[first.partition].position == first.offset  # the message in hand is not done
        assert sum(p.lag for p in lag.values()) == 8 - first.offset
        consumer.pause((topic, 0))
        assert consumer.paused() == {(topic, 0)}
        rest = await take(consumer, 3 if first.partition == 1 else 4)
        assert {m.partition for m in rest} == {1}
        consumer.resume()
        consumer.seek((topic, 1), 1)
        again = await take(consumer, 3 + (4 if first.partition == 1 else 3))
        assert [m.offset for m in again if m.partition == 1] == [1, 2, 3]
        await consumer.seek_to_timestamp(late, (topic, 0))
        await consumer.seek_to_beginning((topic, 1))
        await consumer.seek_to_end((topic, 0))
        tail = await take(consumer, 4)
        assert [(m.partition, m.offset) for m in tail] == [(1, 0), (1, 1), (1, 2), (1, 3)]
        await consumer.seek_to_timestamp(late, (topic, 0))
        (from_late,) = await take(consumer, 1)
        assert (from_late.partition, from_late.offset) == (0, 2)
        with pytest.raises(InvalidRequestError, match="not assigned"):
            consumer.seek((topic, 7), 0)


async def test_an_undecodable_message_raises_and_is_skipped(
    kafka: KafkaConnector, topic: str
) -> None:
    await kafka.produce(topic, b"{not json", value_serializer=BytesSerializer())
    await kafka.produce(topic, {"fine": True})
    async with kafka.consume(topic, group_id=unique_name("g")) as consumer:
        with pytest.raises(SerializationError) as caught:
            await take(consumer, 1)
        assert caught.value.details["offset"] == 0
        assert caught.value.details["part"] == "value"
        (message,) = await take(consumer, 1)
        assert message.value == {"fine": True}


async def test_with_acks_0_nothing_is_acknowledged_but_it_is_sent(
    config_for: Any, topic: str
) -> None:
    fire_and_forget = KafkaConnector(
        config_for(acks=0, enable_idempotence=False, value_format="json")
    )
    async with fire_and_forget:
        report = await fire_and_forget.produce(topic, {"n": 1})
        assert (report.topic, report.partition, report.offset, report.timestamp) == (
            topic,
            -1,
            -1,
            None,
        )
        result = await fire_and_forget.produce_many(topic, [{"n": 2}, {"n": 3}])
        assert (result.written, result.failed) == (2, 0)  # sent: nothing more is known
        async with fire_and_forget.consume(topic, group_id=unique_name("g")) as messages:
            assert [m.value["n"] for m in await take(messages, 3)] == [1, 2, 3]
