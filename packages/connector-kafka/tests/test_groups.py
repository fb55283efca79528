"""Consumer groups on the real broker: three members over six partitions share 10,000
messages exactly once when none crashes, and at least once, losing none, when one is
cancelled before it committed anything."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from kafka_support import make_config

from connector_kafka import KafkaConnector, KafkaMessage, OutgoingMessage
from connector_testing import unique_name

pytestmark = pytest.mark.integration

MESSAGES = 10_000
PARTITIONS = 6
WAIT = 180  # seconds the whole group may take on a loaded two-core machine


async def _fill(kafka: KafkaConnector, topic: str) -> None:
    batch = [OutgoingMessage({"i": i}, key=f"k{i % 97}") for i in range(MESSAGES)]
    result = await kafka.produce_many(topic, batch)
    assert result.ok, result.errors[:3]


async def _stop(tasks: list[asyncio.Task[Any]]) -> None:
    # One at a time: each stop commits, leaves the group and makes the others rebalance.
    for task in tasks:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _until(condition: Any, tasks: list[asyncio.Task[Any]]) -> None:
    """Wait until ``condition()``, checking on it while the runners work; a runner that
    dies meanwhile fails the test with its error."""
    async with asyncio.timeout(WAIT):
        while not condition():
            if not tasks:
                await asyncio.sleep(0.05)
                continue
            done, _ = await asyncio.wait(tasks, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises the runner's error
                pytest.fail("a runner stopped by itself")


async def test_three_members_get_every_message_exactly_once(
    kafka_bootstrap: str, kafka: KafkaConnector, make_topic: Any
) -> None:
    topic = await make_topic(partitions=PARTITIONS)
    await _fill(kafka, topic)
    group = unique_name("g")
    handled: list[int] = []
    by_member: Counter[int] = Counter()

    def handler_of(member: int) -> Any:
        async def handle(message: KafkaMessage[str, Any]) -> None:
            await asyncio.sleep(0.001)  # a real handler awaits something
            handled.append(message.value["i"])
            by_member[member] += 1

        return handle

    # No timed commit during the run: only the commits a rebalance makes before giving
    # partitions up keep the next owner from handling the same messages again.
    members = KafkaConnector(make_config(kafka_bootstrap, value_format="json", commit_interval=600))
    async with members:
        tasks: list[asyncio.Task[Any]] = []
        # Members join one by one, mid-stream: each join revokes partitions whose
        # messages were handled but not committed yet.
        for member, when in enumerate((0, 1_000, 4_000)):
            await _until(lambda when=when: len(handled) >= when, tasks)
            tasks.append(
                asyncio.create_task(members.process(topic, handler_of(member), group_id=group))
            )
        await _until(lambda: len(set(handled)) == MESSAGES, tasks)
        await _stop(tasks)
    counts = Counter(handled)
    assert len(counts) == MESSAGES
    assert [i for i, n in counts.items() if n > 1] == []
    assert len(handled) == MESSAGES
    assert sorted(by_member) == [0, 1, 2], f"the work was not shared: {by_member}"
    lag = await kafka.consumer_group_lag(group)
    assert sorted(p.partition for p in lag) == list(range(PARTITIONS))
    assert [p.lag for p in lag] == [0] * PARTITIONS


async def test_a_member_cancelled_before_committing_loses_nothing(
    kafka: KafkaConnector, make_topic: Any
) -> None:
    topic = await make_topic(partitions=PARTITIONS)
    await _fill(kafka, topic)
    group = unique_name("g")
    seen_by_crasher: set[int] = set()
    crasher_busy = asyncio.Event()
    handled: list[int] = []

    async def crasher() -> None:
        # Reads without ever committing, then dies in the middle of the stream.
        async with kafka.consume(topic, group_id=group, auto_commit=False) as messages:
            async for message in messages:
                seen_by_crasher.add(message.value["i"])
                if len(seen_by_crasher) >= 300:
                    crasher_busy.set()
                    await asyncio.Event().wait()  # stuck until cancelled

    async def handle(message: KafkaMessage[str, Any]) -> None:
        await asyncio.sleep(0.001)
        handled.append(message.value["i"])

    doomed = asyncio.create_task(crasher())
    async with asyncio.timeout(WAIT):
        await crasher_busy.wait()  # the crasher owns partitions and is mid-stream
    survivors = [
        asyncio.create_task(kafka.process(topic, handle, group_id=group)) for _ in range(2)
    ]
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await _until(lambda: len(set(handled)) == MESSAGES, survivors)
    await _stop(survivors)
    assert set(handled) == set(range(MESSAGES)), "a message was lost"
    # What the crasher read was never committed, so the group delivered it again.
    assert seen_by_crasher <= set(handled)
    assert len(seen_by_crasher) >= 300


async def test_a_rebalance_waits_for_the_message_in_hand(
    kafka_bootstrap: str, make_topic: Any
) -> None:
    """consume() with auto_commit: when the group takes a partition away while a message
    of it is in the caller's hands, the member commits it once the caller moves on, so the
    next owner does not get it again."""
    topic = await make_topic(partitions=2)
    group = unique_name("g")
    member = KafkaConnector(make_config(kafka_bootstrap, value_format="json", commit_interval=600))
    async with member:
        assert (await member.produce_many(topic, [{"i": i} for i in range(20)])).ok
        seen: list[tuple[str, int]] = []
        second_started = asyncio.Event()
        all_seen = asyncio.Event()

        async def consume(name: str, *, hold_first: bool) -> None:
            async with member.consume(topic, group_id=group) as messages:
                async for message in messages:
                    await asyncio.sleep(0)  # a real handler awaits something
                    seen.append((name, message.value["i"]))
                    if len({i for _, i in seen}) == 40:
                        all_seen.set()
                    if hold_first and len(seen) == 1:
                        second_started.set()
                        # Hold the first message while the second member joins and the
                        # group rebalances (the heartbeat brings the news within ~0.5 s).
                        await asyncio.sleep(3)

        first = asyncio.create_task(consume("first", hold_first=True))
        async with asyncio.timeout(WAIT):
            await second_started.wait()
        second = asyncio.create_task(consume("second", hold_first=False))
        # More work after the rebalance: the first member cannot have it all buffered.
        assert (await member.produce_many(topic, [{"i": i} for i in range(20, 40)])).ok
        async with asyncio.timeout(WAIT):
            await all_seen.wait()
        for task in (second, first):
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    counts = Counter(i for _, i in seen)
    assert [i for i, n in counts.items() if n > 1] == [], seen
    assert {name for name, _ in seen} == {"first", "second"}, "the group never rebalanced"
