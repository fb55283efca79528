"""connector-kafka versus raw aiokafka, same run, interleaved rounds, medians.

    uv run --no-sync python benchmarks/kafka_throughput.py [--quick] [--messages N] [--rounds R]

(a) produce: N messages of 200 bytes, acks=all, idempotent producer, same batch and
    linger settings on both sides: ``KafkaConnector.produce_many()`` in chunks of
    ``CHUNK`` versus ``AIOKafkaProducer.send()`` for each message of the chunk and a
    gather of the delivery futures; and, for transparency, raw ``send()`` with each
    delivery awaited in order (what produce_many does, cheaper than gather);
(b) consume: the same N messages read by a new consumer group, offsets committed by the
    consumer every 5 s: ``async for batch in KafkaConsumer.batches()`` (lists of typed,
    deserialized messages) versus ``AIOKafkaConsumer.getmany()`` batches (the fastest raw
    way); and, for transparency, the connector's per-message ``async for message in
    KafkaConsumer`` and raw ``async for record in AIOKafkaConsumer`` (aiokafka's own
    iterator).

Each round runs connector and raw back to back (the order alternates; the four consumers
run twice each, in a palindrome, a round's figure being the mean of the two), each
producer on a topic of its own (one partition), deleted afterwards. confluent-kafka
(librdkafka) does the same work once, for reference, when it is installed. Prints
messages/s, peak RSS growth and client CPU per million messages, and connector/raw
ratios (goal: >= 0.95): the ratio of the medians and the median of each round's own
ratio (the figure to quote, see decision 0009). The broker comes from
CONNECTOR_TEST_KAFKA_BOOTSTRAP or ``.services.env``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from connector_kafka import BytesSerializer, KafkaConfig, KafkaConnector

SIZE = 200
CHUNK = 10_000
COMMIT_EVERY = 5.0
PAYLOAD = bytes(range(256))[:SIZE] * (SIZE // 200 or 1)


class PeakRss:
    """Samples this process's RSS every few milliseconds in a thread; ``growth`` is the
    peak above the RSS at entry, in MB."""

    def __init__(self, interval: float = 0.005) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.growth = 0.0

    def __enter__(self) -> PeakRss:
        gc.collect()
        self._baseline = self._process.memory_info().rss
        self._peak = self._baseline
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.growth = (self._peak - self._baseline) / 2**20


async def timed(work: Callable[[], Awaitable[int]]) -> tuple[float, float, float]:
    """Run ``work`` (which returns a message count): (messages/s, peak RSS growth MB,
    this process's CPU seconds per million messages)."""
    with PeakRss() as rss:
        cpu = time.process_time()
        started = time.perf_counter()
        count = await work()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return count / elapsed, rss.growth, cpu * 1_000_000 / count


def _from_services_env(key: str) -> str | None:
    for folder in (Path.cwd(), *Path.cwd().parents):
        env_file = folder / ".services.env"
        if env_file.is_file():
            for line in env_file.read_text().splitlines():
                name, sep, value = line.strip().partition("=")
                if sep and name.strip() == key:
                    return value.strip().strip("'\"") or None
            return None
    return None


def bootstrap() -> str:
    key = "CONNECTOR_TEST_KAFKA_BOOTSTRAP"
    found = os.environ.get(key) or _from_services_env(key)
    if not found:
        sys.exit(f"no Kafka: run `scripts/services up` or set {key}")
    return found


def settings(config: KafkaConfig) -> dict[str, Any]:
    """The raw producer's settings: the connector's own, so both do the same work."""
    return {**config.client_settings(), **config.producer_settings()}


async def main(messages: int, rounds: int, with_confluent: bool) -> None:
    servers = bootstrap()
    config = KafkaConfig(bootstrap_servers=servers, timeout=None, commit_interval=COMMIT_EVERY)
    kafka = KafkaConnector(
        config, key_serializer=BytesSerializer(), value_serializer=BytesSerializer()
    )
    await kafka.connect()
    raw = AIOKafkaProducer(**settings(config))
    await raw.start()
    values = [PAYLOAD] * messages

    async def connector_produce(topic: str) -> int:
        written = 0
        for start in range(0, messages, CHUNK):
            result = await kafka.produce_many(topic, values[start : start + CHUNK])
            assert result.ok, result.errors[:3]
            written += result.written
        return written

    async def raw_produce(topic: str) -> int:
        for start in range(0, messages, CHUNK):
            futures = [await raw.send(topic, value) for value in values[start : start + CHUNK]]
            await asyncio.gather(*futures)
        return messages

    async def raw_produce_in_order(topic: str) -> int:
        """send() for each message, then each delivery awaited in order (no callback per
        future, as gather adds): what produce_many does, for transparency."""
        for start in range(0, messages, CHUNK):
            futures = [await raw.send(topic, value) for value in values[start : start + CHUNK]]
            for future in futures:
                await future
        return messages

    async def connector_batches(topic: str) -> int:
        n = 0
        async with kafka.consume(topic, group_id=f"bench-{uuid.uuid4().hex}") as consumer:
            async for batch in consumer.batches():
                for message in batch:
                    n += message.value is not None
                if n >= messages:
                    break
        return n

    async def connector_consume(topic: str) -> int:
        n = 0
        async with kafka.consume(topic, group_id=f"bench-{uuid.uuid4().hex}") as consumer:
            async for message in consumer:
                n += message.value is not None
                if n == messages:
                    break
        return n

    @contextlib.asynccontextmanager
    async def raw_member(topic: str) -> AsyncIterator[AIOKafkaConsumer]:
        """A raw consumer in a new group, with the connector's consumer settings; its
        offsets are committed when it stops."""
        consumer = AIOKafkaConsumer(
            **config.client_settings(), **config.consumer_settings(f"bench-{uuid.uuid4().hex}")
        )
        consumer.subscribe([topic])
        await consumer.start()
        try:
            yield consumer
            await consumer.commit()
        finally:
            await consumer.stop()

    async def raw_consume(topic: str) -> int:
        n = 0
        last_commit = time.monotonic()
        async with raw_member(topic) as consumer:
            while n < messages:
                batch = await consumer.getmany(timeout_ms=500, max_records=config.max_poll_records)
                for records in batch.values():
                    for record in records:
                        n += record.value is not None
                if time.monotonic() - last_commit >= COMMIT_EVERY:
                    await consumer.commit()
                    last_commit = time.monotonic()
        return n

    async def raw_iterate(topic: str) -> int:
        n = 0
        last_commit = time.monotonic()
        async with raw_member(topic) as consumer:
            async for record in consumer:
                n += record.value is not None
                if time.monotonic() - last_commit >= COMMIT_EVERY:
                    await consumer.commit()
                    last_commit = time.monotonic()
                if n == messages:
                    break
        return n

    results: dict[str, list[tuple[float, float, float]]] = {}

    def record(name: str, value: tuple[float, float, float]) -> None:
        results.setdefault(name, []).append(value)

    load_before = os.getloadavg()
    print(
        f"messages: {messages:,} x {SIZE} B; rounds: {rounds}; produce chunk: {CHUNK:,}; "
        f"acks=all, idempotent; load average {load_before[0]:.2f} (2 cores, shared)",
        flush=True,
    )
    for number in range(rounds):
        order = ["connector", "raw"] if number % 2 == 0 else ["raw", "connector"]
        topics = {side: f"bench-{side}-{uuid.uuid4().hex[:12]}" for side in order}
        for name in topics.values():
            await kafka.create_topic(name, partitions=1)
        topics["raw_in_order"] = f"bench-raw-in-order-{uuid.uuid4().hex[:12]}"
        await kafka.create_topic(topics["raw_in_order"], partitions=1)
        producers = {
            "connector": connector_produce,
            "raw": raw_produce,
            "raw_in_order": raw_produce_in_order,
        }
        sides = list(producers) if number % 2 == 0 else list(reversed(producers))
        for side in sides:
            work = producers[side]
            record(f"produce/{side}", await timed(lambda w=work, t=topics[side]: w(t)))
        # Both consumers read the same topic (the raw producer's), each as a new group.
        source = topics["raw"]
        consumers = {
            "consume/batches": connector_batches,
            "consume/raw": raw_consume,
            "consume/connector": connector_consume,
            "consume/raw_iterator": raw_iterate,
        }
        # Each consumer twice, in a palindrome (batches, raw, iterator, raw iterator, then
        # back): every one sits on average at the same place in the round, so a drift
        # over the round (seen: the later of two consumers ran slower) favours none. A
        # round's figure is the mean of its two runs.
        names = list(consumers) if number % 2 == 0 else list(reversed(consumers))
        runs: dict[str, list[tuple[float, float, float]]] = {}
        for name in [*names, *reversed(names)]:
            runs.setdefault(name, []).append(await timed(lambda w=consumers[name], t=source: w(t)))
        for name, (first, second) in runs.items():
            record(
                name,
                (
                    (first[0] + second[0]) / 2,
                    max(first[1], second[1]),
                    (first[2] + second[2]) / 2,
                ),
            )
        for side in topics.values():
            await kafka.delete_topic(side)
        shown = ", ".join(f"{name} {values[-1][0]:,.0f}" for name, values in results.items())
        print(f"  round {number + 1}/{rounds} (msg/s): {shown}", flush=True)

    await raw.stop()
    reference = {}
    if with_confluent:
        reference = await asyncio.to_thread(confluent_reference, servers, messages)
    await kafka.disconnect()
    load_after = os.getloadavg()

    def median(name: str) -> tuple[float, float, float]:
        values = results[name]
        return (
            statistics.median(v[0] for v in values),
            statistics.median(v[1] for v in values),
            statistics.median(v[2] for v in values),
        )

    print()
    print(f"{'operation':<24}{'messages/s (median)':>22}{'peak RSS MB':>14}{'CPU s/1M':>12}")
    for name in results:
        speed, rss, cpu = median(name)
        print(f"{name:<24}{speed:>22,.0f}{rss:>14.1f}{cpu:>12.2f}")
    for name, figure in reference.items():
        print(f"{name:<24}{figure:>22,.0f}{'':>14}{'':>12}")
    print()
    pairs = {
        "produce (produce_many vs send + gather)": ("produce/connector", "produce/raw"),
        "produce (produce_many vs send + await in order)": (
            "produce/connector",
            "produce/raw_in_order",
        ),
        "consume (batches() vs getmany batches)": ("consume/batches", "consume/raw"),
        "consume (typed iterator vs getmany batches)": ("consume/connector", "consume/raw"),
        "consume (typed iterator vs aiokafka's iterator)": (
            "consume/connector",
            "consume/raw_iterator",
        ),
    }
    for label, (mine, theirs) in pairs.items():
        ratio = median(mine)[0] / median(theirs)[0]
        per_round = [c[0] / r[0] for c, r in zip(results[mine], results[theirs], strict=True)]
        paired = statistics.median(per_round)
        cpu = median(mine)[2] / median(theirs)[2]
        verdict = "ok" if paired >= 0.95 else "below 0.95"
        print(
            f"{label}: connector / raw = {ratio:.3f}; median of per-round ratios = "
            f"{paired:.3f} ({verdict}; rounds ranged {min(per_round):.3f}-{max(per_round):.3f});"
            f" client CPU ratio = {cpu:.3f}"
        )
    print(
        f"noise: load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; the "
        "broker runs on the same 2 cores, so each figure includes its work"
    )
    if not with_confluent:
        print("confluent-kafka: not run (not installed, or --no-confluent)")


def confluent_reference(servers: str, messages: int) -> dict[str, float]:
    """The same produce and consume once with confluent-kafka (librdkafka), in a thread
    (its API blocks); for reference only: a C client, not what the connector wraps."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"bench-confluent-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": servers})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer(
        {
            "bootstrap.servers": servers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,
            "batch.size": 16_384,
        }
    )
    started = time.perf_counter()
    for _ in range(messages):
        while True:
            try:
                producer.produce(topic, PAYLOAD)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    produce_rate = messages / (time.perf_counter() - started)
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": int(COMMIT_EVERY * 1000),
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    n = 0
    started = time.perf_counter()  # joining the group included, as for the others
    while n < messages:
        batch = consumer.consume(num_messages=500, timeout=1.0)
        n += sum(1 for m in batch if m.error() is None)
    consume_rate = messages / (time.perf_counter() - started)
    consumer.close()
    admin.delete_topics([topic])[topic].result(30)
    return {"produce/confluent": produce_rate, "consume/confluent": consume_rate}


def parse(argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k messages, 2 rounds")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--no-confluent", action="store_true", help="skip the reference")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse(sys.argv[1:])
    count = args.messages or (100_000 if args.quick else 1_000_000)
    rounds = args.rounds or (2 if args.quick else 5)
    try:
        import confluent_kafka  # noqa: F401

        confluent = not args.no_confluent
    except ImportError:
        confluent = False
    asyncio.run(main(count, rounds, confluent))
