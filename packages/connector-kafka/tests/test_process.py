"""The process() runner on the real broker: dead-letter topics, poison messages,
per-partition order with partitions in parallel, and what a failure without a
dead-letter topic does."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

import pytest

from connector_core import LifecycleEvent, NotFoundError
from connector_kafka import (
    BytesSerializer,
    DeadLetter,
    HandlerError,
    KafkaConnector,
    KafkaMessage,
    OutgoingMessage,
)
from connector_testing import unique_name

pytestmark = pytest.mark.integration

WAIT = 90
QUICK = DeadLetter(attempts=3, initial_delay=0.01, max_delay=0.02)


async def _run_until(runner: asyncio.Task[Any], done: asyncio.Event) -> None:
    """Wait for ``done`` (set by a handler), failing with the runner's own error if it
    stops first; then stop it the way a service does (cancel: finish, commit, leave)."""
    waiter = asyncio.create_task(done.wait())
    finished, _ = await asyncio.wait(
        {runner, waiter}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED
    )
    if runner in finished:
        waiter.cancel()
        runner.result()
        pytest.fail("the runner stopped by itself")
    assert waiter in finished, "the handlers never got there"
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


async def _committed(kafka: KafkaConnector, group: str) -> dict[int, int]:
    return {p.partition: p.position or 0 for p in await kafka.consumer_group_lag(group)}


async def test_a_message_that_keeps_failing_goes_to_the_dead_letter_topic(
    kafka: KafkaConnector, topic: str
) -> None:
    await kafka.produce_many(
        topic,
        [OutgoingMessage({"i": i}, key=f"k{i}", headers={"origin": "test"}) for i in range(10)],
    )
    group = unique_name("g")
    handled: list[int] = []
    attempts: Counter[int] = Counter()
    done = asyncio.Event()
    retries: list[Any] = []
    kafka.on(LifecycleEvent.RETRY, retries.append)

    async def handle(message: KafkaMessage[str, Any]) -> None:
        number = message.value["i"]
        attempts[number] += 1
        if number == 3:
            raise ValueError("order 3 is malformed")
        handled.append(number)
        if number == 9:
            done.set()

    runner = asyncio.create_task(kafka.process(topic, handle, group_id=group, dlq=QUICK))
    await _run_until(runner, done)
    assert handled == [0, 1, 2, 4, 5, 6, 7, 8, 9], "the poison message stalled its partition"
    assert attempts[3] == 3
    assert len([r for r in retries if r.operation == "process.handle"]) == 2
    assert await _committed(kafka, group) == {0: 10}
    dead = [m async for m in kafka.read_messages(f"{topic}.dlq")]
    assert len(dead) == 1
    (letter,) = dead
    assert (letter.key, letter.value) == ("k3", {"i": 3})  # the original bytes, unchanged
    assert letter.header("origin") == b"test"
    assert letter.header("dlq.original.topic") == topic.encode()
    assert letter.header("dlq.original.partition") == b"0"
    assert letter.header("dlq.original.offset") == b"3"
    assert letter.header("dlq.attempts") == b"3"
    assert letter.header("dlq.error.type") == b"ValueError"
    assert b"order 3 is malformed" in (letter.header("dlq.error") or b"")


async def test_a_message_that_cannot_be_decoded_goes_there_at_once(
    kafka: KafkaConnector, topic: str
) -> None:
    await kafka.produce(topic, b"{truncated", value_serializer=BytesSerializer())
    await kafka.produce(topic, {"i": 1})
    group = unique_name("g")
    done = asyncio.Event()
    handled: list[Any] = []

    async def handle(message: KafkaMessage[str, Any]) -> None:
        handled.append(message.value)
        done.set()

    runner = asyncio.create_task(kafka.process(topic, handle, group_id=group, dlq=QUICK))
    await _run_until(runner, done)
    assert handled == [{"i": 1}]
    (letter,) = [
        m async for m in kafka.read_messages(f"{topic}.dlq", value_serializer=BytesSerializer())
    ]
    assert letter.value == b"{truncated"
    assert letter.header("dlq.attempts") == b"0"
    assert letter.header("dlq.error.type") == b"SerializationError"
    assert await _committed(kafka, group) == {0: 2}


async def test_a_handler_past_its_timeout_is_retried_then_dead_lettered(
    kafka: KafkaConnector, topic: str
) -> None:
    await kafka.produce_many(topic, [{"i": 0}, {"i": 1}])
    done = asyncio.Event()
    calls: Counter[int] = Counter()

    async def handle(message: KafkaMessage[str, Any]) -> None:
        calls[message.value["i"]] += 1
        if message.value["i"] == 0:
            await asyncio.Event().wait()  # hangs
        done.set()

    group = unique_name("g")
    runner = asyncio.create_task(
        kafka.process(topic, handle, group_id=group, dlq=QUICK, handler_timeout=0.2)
    )
    await _run_until(runner, done)
    assert calls == {0: 3, 1: 1}
    (letter,) = [m async for m in kafka.read_messages(f"{topic}.dlq")]
    assert b"handler_timeout=0.2" in (letter.header("dlq.error") or b"")


async def test_without_a_dead_letter_topic_a_failure_stops_the_run_uncommitted(
    kafka: KafkaConnector, topic: str
) -> None:
    await kafka.produce_many(topic, [{"i": i} for i in range(5)])
    group = unique_name("g")

    async def handle(message: KafkaMessage[str, Any]) -> None:
        if message.value["i"] == 2:
            raise KeyError("no such customer")

    with pytest.raises(HandlerError) as caught:
        async with asyncio.timeout(WAIT):
            await kafka.process(topic, handle, group_id=group, dlq=None)
    assert isinstance(caught.value.__cause__, Exception)
    assert "KeyError" in str(caught.value)
    # 0 and 1 were handled and committed; 2 was not, so the next run starts there.
    assert await _committed(kafka, group) == {0: 2}
    with pytest.raises(NotFoundError):  # nothing was dead-lettered
        [m async for m in kafka.read_messages(f"{topic}.dlq")]


async def test_partitions_run_in_parallel_each_in_order(
    kafka: KafkaConnector, make_topic: Any
) -> None:
    topic = await make_topic(partitions=4)
    per_partition = 25
    batch = [
        OutgoingMessage({"p": p, "n": n}, partition=p)
        for n in range(per_partition)
        for p in range(4)
    ]
    assert (await kafka.produce_many(topic, batch)).ok
    seen: dict[int, list[int]] = defaultdict(list)
    in_flight: Counter[int] = Counter()
    most = {"any": 0, "same_partition": 0}
    done = asyncio.Event()

    async def handle(message: KafkaMessage[str, Any]) -> None:
        partition = message.partition
        in_flight[partition] += 1
        most["same_partition"] = max(most["same_partition"], in_flight[partition])
        most["any"] = max(most["any"], sum(in_flight.values()))
        await asyncio.sleep(0.005)
        seen[partition].append(message.value["n"])
        in_flight[partition] -= 1
        if sum(len(v) for v in seen.values()) == 4 * per_partition:
            done.set()

    runner = asyncio.create_task(
        kafka.process(topic, handle, group_id=unique_name("g"), concurrency=4)
    )
    await _run_until(runner, done)
    assert most["same_partition"] == 1
    assert most["any"] > 1
    assert all(seen[p] == list(range(per_partition)) for p in range(4))
