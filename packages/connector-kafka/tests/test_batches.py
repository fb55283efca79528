"""``KafkaConsumer.batches()`` against the real broker: order and size of batches, when a
batch counts as done (at least once), manual commits inside a batch, undecodable records,
and rebalances that wait for (or abandon) the batch in hand."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from kafka_support import make_config

from connector_core import InvalidRequestError, SerializationError
from connector_kafka import (
    BytesSerializer,
    KafkaConnector,
    KafkaConsumer,
    KafkaMessage,
    OutgoingMessage,
)
from connector_testing import unique_name

pytestmark = pytest.mark.integration

WAIT = 60  # seconds any wait for messages may take on a loaded machine


async def take_batches(
    consumer: KafkaConsumer[Any, Any], n: int, **options: Any
) -> list[list[KafkaMessage[Any, Any]]]:
    """Batches of ``consumer`` until they hold ``n`` messages in all; the last one stays
    in hand (the loop ends by ``break``)."""
    found: list[list[KafkaMessage[Any, Any]]] = []
    async with asyncio.timeout(WAIT):
        async for batch in consumer.batches(**options):
            found.append(batch)
            if sum(len(b) for b in found) >= n:
                break
    return found


def values(batches: list[list[KafkaMessage[Any, Any]]]) -> list[int]:
    return [m.value["i"] for batch in batches for m in batch]


@pytest.fixture
async def ten(kafka: KafkaConnector, topic: str) -> str:
    result = await kafka.produce_many(topic, [{"i": i} for i in range(10)])
    assert result.ok
    return topic


async def test_batches_keep_each_partition_in_order_and_bound_their_size(
    kafka: KafkaConnector, make_topic: Any
) -> None:
    topic = await make_topic(partitions=3)
    outgoing = [OutgoingMessage({"i": i}, key=f"k{i}", partition=i % 3) for i in range(300)]
    assert (await kafka.produce_many(topic, outgoing)).ok
    async with kafka.consume(topic, group_id=unique_name("g")) as consumer:
        batches = await take_batches(consumer, 300, max_records=40)
    assert all(0 < len(batch) <= 40 for batch in batches)
    messages = [m for batch in batches for m in batch]
    assert all(isinstance(m, KafkaMessage) for m in messages)
    assert sorted(m.value["i"] for m in messages) == list(range(300))  # each once
    for partition in range(3):
        mine = [m for m in messages if m.partition == partition]
        assert [m.offset for m in mine] == list(range(100))
        assert [m.value["i"] for m in mine] == list(range(partition, 300, 3))
        assert {m.key for m in mine} == {f"k{i}" for i in range(partition, 300, 3)}


async def test_a_batch_is_done_when_the_next_is_asked_for_or_the_block_ends(
    kafka: KafkaConnector, ten: str
) -> None:
    group = unique_name("g")
    async with kafka.consume(ten, group_id=group) as first:
        got = await take_batches(first, 8, max_records=4)
        assert values(got) == list(range(8))
        assert first.positions() == {(ten, 0): 8}  # the batch in hand included
    # The block ended normally: the batch in hand (#4-#7) was done and committed.
    async with kafka.consume(ten, group_id=group) as second:
        assert values(await take_batches(second, 2)) == [8, 9]


async def test_a_failure_leaves_the_batch_in_hand_for_the_next_member(
    kafka: KafkaConnector, ten: str
) -> None:
    group = unique_name("g")

    async def break_in_the_second_batch() -> None:
        async with kafka.consume(ten, group_id=group) as first:
            async for batch in first.batches(max_records=4):
                if batch[0].value["i"] == 4:
                    raise RuntimeError("handler broke")

    with pytest.raises(RuntimeError, match="handler broke"):
        await break_in_the_second_batch()
    # The first batch was done (the second was asked for); the second was not.
    async with kafka.consume(ten, group_id=group) as second:
        assert values(await take_batches(second, 6)) == [4, 5, 6, 7, 8, 9]


async def test_manual_commits_inside_and_of_a_batch(kafka: KafkaConnector, ten: str) -> None:
    group = unique_name("g")
    async with kafka.consume(ten, group_id=group, auto_commit=False) as first:
        (batch,) = await take_batches(first, 6, max_records=6)
        await first.commit(batch[2])  # done up to #2 only
    lag = {(p.topic, p.partition): p.position for p in await kafka.consumer_group_lag(group)}
    assert lag == {(ten, 0): 3}
    async with kafka.consume(ten, group_id=group, auto_commit=False) as second:
        (batch,) = await take_batches(second, 4, max_records=4)
        assert values([batch]) == [3, 4, 5, 6]
        await second.commit()  # the whole batch in hand
    lag = {(p.topic, p.partition): p.position for p in await kafka.consumer_group_lag(group)}
    assert lag == {(ten, 0): 7}


async def test_a_timeout_yields_an_empty_batch(kafka: KafkaConnector, topic: str) -> None:
    async with kafka.consume(topic, group_id=unique_name("g")) as consumer:
        batches = consumer.batches(timeout=0.5)
        async with asyncio.timeout(WAIT):
            assert await anext(batches) == []
            await kafka.produce(topic, {"i": 1})
            while not (batch := await anext(batches)):
                pass
    assert values([batch]) == [1]


async def test_an_undecodable_record_ends_its_batch_then_raises_then_is_skipped(
    kafka: KafkaConnector, topic: str
) -> None:
    await kafka.produce_many(topic, [{"i": 0}, {"i": 1}])
    await kafka.produce(topic, b"{not json", value_serializer=BytesSerializer())
    await kafka.produce(topic, {"i": 3})
    group = unique_name("g")
    async with kafka.consume(topic, group_id=group) as consumer:
        batches = consumer.batches()
        async with asyncio.timeout(WAIT):
            first = await anext(batches)
            while len(first) < 2:  # the first fetch may bring fewer
                first += await anext(batches)
            assert values([first]) == [0, 1]
            with pytest.raises(SerializationError) as caught:
                await anext(batches)
            assert caught.value.details["offset"] == 2
            assert caught.value.details["part"] == "value"
            assert values([await anext(batches)]) == [3]
    # The bad record counted as done: nothing is left for the group.
    lag = {p.partition: p.lag for p in await kafka.consumer_group_lag(group)}
    assert lag == {0: 0}


async def test_a_consumer_is_read_by_messages_or_by_batches_not_both(
    kafka: KafkaConnector, ten: str
) -> None:
    async with kafka.consume(ten, group_id=unique_name("g")) as by_batches:
        await take_batches(by_batches, 1)
        with pytest.raises(InvalidRequestError, match="not both"):
            by_batches.__aiter__()
    async with kafka.consume(ten, group_id=unique_name("g")) as by_messages:
        async for _ in by_messages:
            break
        with pytest.raises(InvalidRequestError, match="not both"):
            by_messages.batches()
    with pytest.raises(InvalidRequestError, match="max_records"):
        by_messages.batches(max_records=0)


async def _hold_until(condition: Any) -> None:
    # Polled: the states waited for (a rebalance's progress) signal no event of their own.
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _two_members(
    member: KafkaConnector, topic: str, group: str, *, abandon: bool
) -> list[tuple[str, int]]:
    """Two members of ``group`` read ``topic`` (2 partitions, 40 messages) by batches;
    the first holds its first batch while the second joins. ``abandon=False``: it lets
    go once the group's revoke waits for that batch; ``abandon=True``: only once the
    rebalance has completed without it (past ``drain_timeout``)."""
    assert (await member.produce_many(topic, [{"i": i} for i in range(20)])).ok
    seen: list[tuple[str, int]] = []
    second_may_start = asyncio.Event()
    all_seen = asyncio.Event()

    async def consume(name: str, *, hold_first: bool) -> None:
        async with member.consume(topic, group_id=group) as consumer:
            async for batch in consumer.batches():
                await asyncio.sleep(0)  # a real handler awaits something
                seen.extend((name, m.value["i"]) for m in batch)
                if len({i for _, i in seen}) == 40:
                    all_seen.set()
                if hold_first and not second_may_start.is_set():
                    assert len(consumer.assignment()) == 2
                    second_may_start.set()
                    if abandon:  # until the group moved on without this batch
                        await _hold_until(lambda: len(consumer.assignment()) == 1)
                    else:  # until the revoke waits for this batch (private, on purpose)
                        await _hold_until(lambda: consumer._finish_waiter is not None)

    first = asyncio.create_task(consume("first", hold_first=True))
    async with asyncio.timeout(WAIT):
        await second_may_start.wait()
    second = asyncio.create_task(consume("second", hold_first=False))
    # More work after the rebalance: the first member cannot have it all buffered.
    assert (await member.produce_many(topic, [{"i": i} for i in range(20, 40)])).ok
    async with asyncio.timeout(WAIT):
        await all_seen.wait()
    for task in (second, first):
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return seen


async def test_a_rebalance_waits_for_the_batch_in_hand(
    kafka_bootstrap: str, make_topic: Any
) -> None:
    """The first member holds a batch of both partitions when the group takes one away:
    it commits the batch once the caller asks for the next, so the next owner does not
    get any of it again."""
    topic = await make_topic(partitions=2)
    member = KafkaConnector(make_config(kafka_bootstrap, value_format="json", commit_interval=600))
    async with member:
        seen = await _two_members(member, topic, unique_name("g"), abandon=False)
    counts = Counter(i for _, i in seen)
    assert sorted(counts) == list(range(40))
    assert [i for i, n in counts.items() if n > 1] == [], seen
    assert {name for name, _ in seen} == {"first", "second"}, "the group never rebalanced"


async def test_a_batch_held_past_drain_timeout_is_delivered_again(
    kafka_bootstrap: str, make_topic: Any
) -> None:
    """Held past ``drain_timeout``, the revoked partitions' share of the batch is
    abandoned (not committed): their next owner gets it again, and nothing is lost.
    (aiokafka's eager rebalances revoke every partition, then assign again.)"""
    topic = await make_topic(partitions=2)
    config = make_config(
        kafka_bootstrap, value_format="json", commit_interval=600, drain_timeout=1.0
    )
    member = KafkaConnector(config)
    async with member:
        seen = await _two_members(member, topic, unique_name("g"), abandon=True)
    counts = Counter(i for _, i in seen)
    assert sorted(counts) == list(range(40)), "a message was lost"
    again = {i for i, n in counts.items() if n > 1}
    assert again, "nothing of the abandoned batch came again"
    first_batch = {i for name, i in seen if name == "first"}
    assert again <= first_batch, "only what the first member held may come twice"
