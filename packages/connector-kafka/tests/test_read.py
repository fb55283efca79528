"""Bounded reads and discovery against the real broker: up to the end the topic had when
the read began, checkpoints of per-partition offsets that survive JSON, timestamps."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connector_core import Checkpoint, FieldType, InvalidRequestError, NotFoundError
from connector_kafka import BytesSerializer, KafkaConnector, OutgoingMessage

pytestmark = pytest.mark.integration

EPOCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


async def _fill(kafka: KafkaConnector, topic: str, partitions: int, per_partition: int) -> None:
    batch = [
        OutgoingMessage(
            {"p": p, "n": n}, key=f"{p}-{n}", partition=p, timestamp=EPOCH + dt.timedelta(minutes=n)
        )
        for n in range(per_partition)
        for p in range(partitions)
    ]
    assert (await kafka.produce_many(topic, batch)).ok


async def test_a_read_stops_at_the_end_the_topic_had_when_it_began(
    kafka: KafkaConnector, make_topic: Any
) -> None:
    topic = await make_topic(partitions=2)
    await _fill(kafka, topic, 2, 5)
    reader = kafka.read(topic)
    first = await anext(reader)
    await _fill(kafka, topic, 2, 3)  # written after the read began: not part of it
    rest = [record async for record in reader]
    assert len([first, *rest]) == 10
    assert reader.checkpoint == Checkpoint(cursor={"0": 5, "1": 5})
    later = [record async for record in kafka.read(topic, since=reader.checkpoint)]
    assert sorted((r["p"], r["n"]) for r in later) == [(p, n) for p in (0, 1) for n in range(3)]


async def test_records_come_in_offset_order_within_each_partition(
    kafka: KafkaConnector, make_topic: Any
) -> None:
    topic = await make_topic(partitions=3)
    await _fill(kafka, topic, 3, 20)
    records = [record async for record in kafka.read(topic)]
    for partition in range(3):
        assert [r["n"] for r in records if r["p"] == partition] == list(range(20))


async def test_checkpoints_through_json_resume_without_gaps_or_repeats(
    kafka: KafkaConnector, make_topic: Any
) -> None:
    topic = await make_topic(partitions=3)
    await _fill(kafka, topic, 3, 13)
    seen: list[tuple[int, int]] = []
    saved: str | None = None
    for _ in range(20):
        since = Checkpoint.model_validate_json(saved) if saved is not None else None
        reader = kafka.read(topic, since=since, limit=7)
        page = [record async for record in reader]
        if not page:
            break
        seen += [(r["p"], r["n"]) for r in page]
        saved = reader.checkpoint.model_dump_json()  # as a sync stores it between runs
    assert len(seen) == len(set(seen)), "a record was read twice"
    assert sorted(seen) == [(p, n) for p in range(3) for n in range(13)], "a record was skipped"


async def test_since_a_timestamp_includes_that_timestamp(
    kafka: KafkaConnector, make_topic: Any
) -> None:
    topic = await make_topic(partitions=2)
    await _fill(kafka, topic, 2, 6)
    since = EPOCH + dt.timedelta(minutes=4)
    records = [r async for r in kafka.read(topic, since=since)]
    assert sorted((r["p"], r["n"]) for r in records) == [(p, n) for p in (0, 1) for n in (4, 5)]
    millis = round(since.timestamp() * 1000)
    assert len([r async for r in kafka.read(topic, since=millis)]) == 4
    assert [r async for r in kafka.read(topic, since=EPOCH + dt.timedelta(days=1))] == []


async def test_limit_sample_and_stopping_early(kafka: KafkaConnector, make_topic: Any) -> None:
    topic = await make_topic(partitions=1)
    await _fill(kafka, topic, 1, 10)
    assert [r["n"] async for r in kafka.read(topic, limit=3)] == [0, 1, 2]
    assert [r async for r in kafka.read(topic, limit=0)] == []
    sample = await kafka.sample(topic, 4)
    assert len(sample) == 4
    assert all(r["p"] == 0 for r in sample)
    reader = kafka.read(topic)
    async for record in reader:
        if record["n"] == 1:
            break
    await reader.aclose()
    assert reader.checkpoint == Checkpoint(cursor={"0": 2})


async def test_values_that_are_not_json_objects_become_key_value_records(
    kafka: KafkaConnector, topic: str
) -> None:
    await kafka.produce(topic, [1, 2], key="list")
    await kafka.produce(topic, b"raw", key="bytes", value_serializer=BytesSerializer())
    records = [r async for r in kafka.read_messages(topic, value_serializer=BytesSerializer())]
    assert [m.value for m in records] == [b"[1,2]", b"raw"]
    assert (await kafka.sample(topic, 1)) == [{"key": "list", "value": [1, 2]}]


async def test_bad_reads_are_refused(kafka: KafkaConnector, topic: str, unique_topic: str) -> None:
    with pytest.raises(NotFoundError):
        [r async for r in kafka.read(unique_topic + "-missing")]
    with pytest.raises(NotFoundError):
        await kafka.sample(unique_topic + "-missing", 1)
    with pytest.raises(InvalidRequestError, match="partitions to the next offset"):
        [r async for r in kafka.read(topic, since=Checkpoint(cursor=5))]
    with pytest.raises(InvalidRequestError, match="offsets"):
        [r async for r in kafka.read(topic, since={"0": -1})]
    with pytest.raises(InvalidRequestError, match="limit"):
        kafka.read(topic, limit=-1)
    with pytest.raises(InvalidRequestError, match="aware"):
        [r async for r in kafka.read(topic, since=dt.datetime(2026, 1, 1))]


async def test_discover_infers_fields_and_the_key_from_json(
    kafka: KafkaConnector, make_topic: Any
) -> None:
    topic = await make_topic(partitions=2)
    records = [
        {"id": "a1", "amount": 3, "rate": 0.5, "tags": ["x"], "meta": {"k": 1}, "note": None},
        {"id": "a2", "amount": 4.5, "rate": 1.0, "tags": [], "meta": {}, "flag": True},
    ]
    assert (await kafka.write(topic, records, key="id")).ok
    catalog = await kafka.discover()
    found = catalog.stream(topic)
    types = {f.name: (f.type, f.nullable) for f in found.fields}
    assert types == {
        "id": (FieldType.STRING, False),
        "amount": (FieldType.NUMBER, False),
        "rate": (FieldType.NUMBER, False),
        "tags": (FieldType.ARRAY, False),
        "meta": (FieldType.OBJECT, False),
        "note": (FieldType.UNKNOWN, True),
        "flag": (FieldType.BOOLEAN, True),
    }
    assert found.primary_key == ("id",)
    assert found.kind == "topic"
    assert found.partitions == 2  # type: ignore[attr-defined]
    assert found.estimated_count == 2
    assert not [s for s in catalog.streams if s.name.startswith("__")]


async def test_discover_without_json_values_lists_topics_only(
    kafka_bootstrap: str, topic: str
) -> None:
    from kafka_support import make_config

    plain = KafkaConnector(make_config(kafka_bootstrap))  # bytes values
    async with plain:
        await plain.produce(topic, b"opaque")
        found = (await plain.discover()).stream(topic)
    assert found.fields == ()
    assert found.primary_key == ()
    assert found.estimated_count == 1
