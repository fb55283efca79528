"""Admin calls against the real broker: topics and consumer groups."""

from __future__ import annotations

from typing import Any

import pytest

from connector_core import ConflictError, InvalidRequestError, NotFoundError
from connector_kafka import KafkaConnector
from connector_testing import unique_name

pytestmark = pytest.mark.integration


async def test_create_describe_and_delete_a_topic(kafka: KafkaConnector, unique_topic: str) -> None:
    await kafka.create_topic(unique_topic, partitions=3, configs={"retention.ms": "3600000"})
    try:
        described = await kafka.describe_topic(unique_topic)
        assert described.name == unique_topic
        assert described.partition_count == 3
        assert [p.partition for p in described.partitions] == [0, 1, 2]
        assert all(p.leader >= 0 and p.replicas for p in described.partitions)
        assert described.replication_factor == 1  # the broker's default.replication.factor
        assert described.configs["retention.ms"] == "3600000"
        assert unique_topic in await kafka.list_topics()
        with pytest.raises(ConflictError, match="already exists"):
            await kafka.create_topic(unique_topic)
        await kafka.produce(unique_topic, {"usable": True}, partition=2)  # at once
    finally:
        await kafka.delete_topic(unique_topic)
    with pytest.raises(NotFoundError):
        await kafka.describe_topic(unique_topic)


async def test_unknown_topics_are_not_found_and_not_created(
    kafka: KafkaConnector, unique_topic: str
) -> None:
    for call in (kafka.describe_topic, kafka.delete_topic, kafka.end_offsets):
        with pytest.raises(NotFoundError):
            await call(unique_topic)
    with pytest.raises(NotFoundError):
        [r async for r in kafka.read(unique_topic)]
    # Looking a topic up must not create it (the broker auto-creates on plain metadata).
    assert unique_topic not in await kafka.list_topics()


async def test_bad_topic_settings_are_invalid_requests(
    kafka: KafkaConnector, unique_topic: str
) -> None:
    with pytest.raises(InvalidRequestError, match="partitions"):
        await kafka.create_topic(unique_topic, partitions=0)
    with pytest.raises(InvalidRequestError, match=r"(?i)replication"):
        await kafka.create_topic(unique_topic, replication_factor=3)  # one broker
    with pytest.raises(InvalidRequestError):
        await kafka.create_topic(unique_topic, configs={"cleanup.policy": "sometimes"})
    with pytest.raises(InvalidRequestError, match="invalid topic name"):
        await kafka.create_topic("bad/name")
    assert unique_topic not in await kafka.list_topics()


async def test_internal_topics_are_listed_only_on_request(
    kafka: KafkaConnector, topic: str
) -> None:
    await kafka.produce(topic, {"n": 1})
    async with kafka.consume(topic, group_id=unique_name("g")) as messages:
        async for _ in messages:
            break  # a commit makes sure __consumer_offsets exists
    assert not [t for t in await kafka.list_topics() if t.startswith("__")]
    assert "__consumer_offsets" in await kafka.list_topics(internal=True)


async def test_groups_and_their_lag(kafka: KafkaConnector, make_topic: Any) -> None:
    topic = await make_topic(partitions=2)
    for partition, count in ((0, 5), (1, 3)):
        for _ in range(count):
            await kafka.produce(topic, {"p": partition}, partition=partition)
    group = unique_name("g")
    async with kafka.consume(topic, group_id=group, auto_commit=False) as messages:
        seen = 0
        async for _ in messages:
            seen += 1
            if seen == 6:
                await messages.commit()  # six messages done, over both partitions
                break
    assert group in await kafka.list_consumer_groups()
    lag = await kafka.consumer_group_lag(group)
    assert [(p.partition, p.end_offset) for p in lag] == [(0, 5), (1, 3)]
    assert sum(p.position or 0 for p in lag) == 6
    assert sum(p.lag for p in lag) == 2
    assert await kafka.end_offsets(topic) == {0: 5, 1: 3}
    assert await kafka.consumer_group_lag(unique_name("never")) == []
