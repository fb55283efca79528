"""Transactions on the real broker: an exception aborts, and a read_committed consumer
never sees what was aborted; consumed offsets commit atomically with the output."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kafka_support import make_config

from connector_core import ConflictError, InvalidRequestError
from connector_kafka import KafkaConnector, KafkaConsumer
from connector_testing import unique_name

pytestmark = pytest.mark.integration

WAIT = 60


@pytest.fixture
async def transactional(kafka_bootstrap: str) -> AsyncIterator[KafkaConnector]:
    connector = KafkaConnector(
        make_config(kafka_bootstrap, value_format="json", transactional_id=unique_name("tx"))
    )
    async with connector:
        yield connector


async def _all(consumer: KafkaConsumer[Any, Any], n: int) -> list[Any]:
    values = []
    async with asyncio.timeout(WAIT):
        async for message in consumer:
            values.append(message.value)
            if len(values) == n:
                break
    return values


async def test_an_aborted_transaction_is_invisible_to_a_read_committed_consumer(
    transactional: KafkaConnector, kafka: KafkaConnector, topic: str
) -> None:
    async def fails_half_way() -> None:
        async with transactional.transaction() as tx:
            await tx.produce(topic, {"n": 1, "state": "aborted"})
            await transactional.produce(topic, {"n": 2, "state": "aborted"})  # joins tx
            raise RuntimeError("the transform failed")

    with pytest.raises(RuntimeError, match="transform failed"):
        await fails_half_way()
    async with transactional.transaction() as tx:
        await tx.produce(topic, {"n": 3, "state": "committed"})
    # read_committed (the default) sees the committed message only; the aborted ones
    # are in the log, as a read_uncommitted consumer shows.
    async with kafka.consume(topic, group_id=unique_name("g")) as committed:
        assert await _all(committed, 1) == [{"n": 3, "state": "committed"}]
    dirty = KafkaConnector(
        type(kafka.config).model_validate(
            {**kafka.config.model_dump(), "isolation_level": "read_uncommitted"}
        )
    )
    async with dirty, dirty.consume(topic, group_id=unique_name("g")) as everything:
        assert [v["n"] for v in await _all(everything, 3)] == [1, 2, 3]
    # A bounded read ends although the log ends in transaction markers.
    assert [r async for r in kafka.read(topic)] == [{"n": 3, "state": "committed"}]


async def test_consumed_offsets_commit_with_the_output_or_not_at_all(
    transactional: KafkaConnector, kafka: KafkaConnector, make_topic: Any
) -> None:
    source = await make_topic(suffix="-in")
    sink = await make_topic(suffix="-out")
    assert (await kafka.produce_many(source, [{"i": i} for i in range(4)])).ok
    group = unique_name("g")

    async def transform(n: int, *, fail: bool) -> None:
        async with transactional.consume(source, group_id=group, auto_commit=False) as messages:
            got = 0
            async for message in messages:
                async with transactional.transaction() as tx:
                    await tx.produce(sink, {"doubled": message.value["i"] * 2})
                    await tx.commit_offsets(messages)
                    if fail:
                        raise RuntimeError("crash before the commit")
                got += 1
                if got == n:
                    return

    async with asyncio.timeout(WAIT):
        await transform(2, fail=False)
        with pytest.raises(RuntimeError, match="crash"):
            await transform(1, fail=True)
    lag = {p.partition: p.position for p in await kafka.consumer_group_lag(group)}
    assert lag == {0: 2}, "the aborted transaction's offsets were committed"
    assert [r async for r in kafka.read(sink)] == [{"doubled": 0}, {"doubled": 2}]
    async with asyncio.timeout(WAIT):
        await transform(2, fail=False)  # picks up at the first unprocessed message
    assert [r["doubled"] async for r in kafka.read(sink)] == [0, 2, 4, 6]
    assert {p.partition: p.position for p in await kafka.consumer_group_lag(group)} == {0: 4}


async def test_transactions_need_a_transactional_producer(
    kafka: KafkaConnector, transactional: KafkaConnector, topic: str
) -> None:
    with pytest.raises(InvalidRequestError, match="transactional_id"):
        async with kafka.transaction():
            pass
    with pytest.raises(InvalidRequestError, match="inside"):
        await transactional.produce(topic, {"outside": True})
    with pytest.raises(InvalidRequestError, match="inside"):
        await transactional.produce_many(topic, [{"outside": True}])


async def test_a_newer_producer_with_the_same_id_fences_the_older(
    kafka_bootstrap: str, topic: str
) -> None:
    fields = {"value_format": "json", "transactional_id": unique_name("tx")}
    old = KafkaConnector(make_config(kafka_bootstrap, **fields))
    new = KafkaConnector(make_config(kafka_bootstrap, **fields))
    async with old:
        async with old.transaction() as tx:
            await tx.produce(topic, {"by": "old"})
        async with new:  # takes the transactional id over
            with pytest.raises(ConflictError, match=r"(?i)fenced|epoch"):
                async with old.transaction() as tx:
                    await tx.produce(topic, {"by": "old again"})
            async with new.transaction() as tx:
                await tx.produce(topic, {"by": "new"})
