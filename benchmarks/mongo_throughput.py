"""connector-mongo versus raw PyMongo AsyncMongoClient, same run, interleaved rounds, medians.

    uv run --no-sync python benchmarks/mongo_throughput.py [--quick] [--docs N] [--rounds R]
        [--only stream|insert]

(a) stream N documents of a collection loaded once before the rounds, ``BATCH`` documents
    per round trip on both sides, every document visited: ``MongoConnector.find()`` (an
    async iterator) versus ``async for document in collection.find(batch_size=BATCH)``;
(b) bulk-insert the same N documents (dicts built before the clock starts) into an empty
    collection: ``MongoConnector.insert_many()`` versus ``collection.insert_many()``, both
    unordered, in chunks of ``CHUNK`` (the driver splits each into server batches).

Both sides run on the same MongoDB-wire server with the same client settings (the raw
client is built from the connector's ``MongoConfig.client_settings()``). Each round runs
connector and raw back to back, the order alternating. Prints documents/s, peak RSS
growth and client CPU per million documents, and connector/raw ratios (goal: >= 0.95):
the ratio of the medians and the median of each round's own ratio (the figure to quote,
see decision 0009). The server comes from CONNECTOR_TEST_MONGO_URL or ``.services.env``
(the FerretDB of ``scripts/services``: its SQLite backend, not the client, sets the pace).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from pymongo import AsyncMongoClient

from connector_mongo import MongoConfig, MongoConnector

BATCH = 10_000
CHUNK = 50_000
DATABASE = "bench_mongo_throughput"


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
    """Run ``work`` (which returns a document count): (documents/s, peak RSS growth MB,
    this process's CPU seconds per million documents)."""
    with PeakRss() as rss:
        cpu = time.process_time()
        started = time.perf_counter()
        count = await work()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return count / elapsed, rss.growth, cpu * 1_000_000 / count


def _from_services_env(key: str) -> str | None:
    """``key`` from the nearest ``.services.env`` (``KEY=value`` lines) above the cwd."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        env_file = folder / ".services.env"
        if env_file.is_file():
            for line in env_file.read_text().splitlines():
                name, sep, value = line.strip().partition("=")
                if sep and name.strip() == key:
                    return value.strip().strip("'\"") or None
            return None
    return None


def server_url() -> str:
    key = "CONNECTOR_TEST_MONGO_URL"
    url = os.environ.get(key) or _from_services_env(key)
    if not url:
        sys.exit(f"no MongoDB-wire server: run `scripts/services up` or set {key}")
    return url


def documents(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"_id": i, "name": f"name-{i}", "score": i / 3} for i in range(start, start + count)]


async def main(docs: int, rounds: int, parts: frozenset[str]) -> None:
    config = MongoConfig.from_url(server_url(), database=DATABASE, timeout=None)
    mongo = MongoConnector(config)
    await mongo.connect()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(**config.client_settings())
    raw = client[DATABASE]
    source = f"stream_{uuid.uuid4().hex[:8]}"
    await raw.drop_collection(source)
    for start in range(0, docs if "stream" in parts else 0, CHUNK):
        await raw[source].insert_many(documents(min(CHUNK, docs - start), start), ordered=False)
    to_insert = documents(docs if "insert" in parts else 0)

    async def connector_stream() -> int:
        n = 0
        async for document in mongo.find(source, {}, batch_size=BATCH):
            n += document["_id"] >= 0
        return n

    async def raw_stream() -> int:
        n = 0
        async for document in raw[source].find({}, batch_size=BATCH):
            n += document["_id"] >= 0
        return n

    async def connector_insert(collection: str) -> int:
        written = 0
        for start in range(0, docs, CHUNK):
            result = await mongo.insert_many(
                collection, to_insert[start : start + CHUNK], ordered=False
            )
            assert result.ok, result.errors[:3]
            written += result.written
        return written

    async def raw_insert(collection: str) -> int:
        for start in range(0, docs, CHUNK):
            await raw[collection].insert_many(to_insert[start : start + CHUNK], ordered=False)
        return docs

    results: dict[str, list[tuple[float, float, float]]] = {}

    def record(name: str, value: tuple[float, float, float]) -> None:
        results.setdefault(name, []).append(value)

    load_before = os.getloadavg()
    print(
        f"documents: {docs:,}; rounds: {rounds}; find batch: {BATCH:,}; insert chunk: "
        f"{CHUNK:,}; load average {load_before[0]:.2f} (2 cores, shared)",
        flush=True,
    )
    for number in range(rounds):
        # Alternate who goes first so warm caches favour neither side.
        order = ["connector", "raw"] if number % 2 == 0 else ["raw", "connector"]
        for side in order if "stream" in parts else ():
            record(
                f"stream/{side}",
                await timed(connector_stream if side == "connector" else raw_stream),
            )
        for side in order if "insert" in parts else ():
            target = f"insert_{side}_{uuid.uuid4().hex[:8]}"
            work = connector_insert if side == "connector" else raw_insert
            record(f"insert/{side}", await timed(lambda w=work, t=target: w(t)))
            await raw.drop_collection(target)
        print(f"  round {number + 1}/{rounds} done", flush=True)
    await raw.drop_collection(source)
    await client.close()
    await mongo.disconnect()
    load_after = os.getloadavg()

    def median(name: str) -> tuple[float, float, float]:
        values = results[name]
        return (
            statistics.median(v[0] for v in values),
            statistics.median(v[1] for v in values),
            statistics.median(v[2] for v in values),
        )

    print()
    print(f"{'operation':<24}{'documents/s (median)':>22}{'peak RSS MB':>14}{'CPU s/1M':>12}")
    for name in results:
        speed, rss, cpu = median(name)
        print(f"{name:<24}{speed:>22,.0f}{rss:>14.1f}{cpu:>12.2f}")
    print()
    pairs = {
        "stream (find() vs async for over collection.find())": ("stream/connector", "stream/raw"),
        "bulk insert (insert_many() vs collection.insert_many())": (
            "insert/connector",
            "insert/raw",
        ),
    }
    for label, (mine, theirs) in pairs.items():
        if mine not in results:
            continue
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
        "server runs on the same 2 cores, so each figure includes its work"
    )


def parse(argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k documents, 2 rounds")
    parser.add_argument("--docs", type=int, default=None, help="documents per stream and insert")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--only", choices=["stream", "insert"], default=None, help="run one part, (a) or (b)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse(sys.argv[1:])
    count = args.docs or (100_000 if args.quick else 1_000_000)
    rounds = args.rounds or (2 if args.quick else 5)
    parts = frozenset([args.only] if args.only else ["stream", "insert"])
    asyncio.run(main(count, rounds, parts))
