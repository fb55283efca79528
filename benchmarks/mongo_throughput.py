"""connector-mongo versus raw PyMongo AsyncMongoClient, same run, interleaved step by step.

    uv run --no-sync python benchmarks/mongo_throughput.py [--quick] [--docs N] [--rounds R]
        [--only stream|insert] [--profile-insert]

(a) stream N documents of a collection loaded once before the rounds, ``BATCH`` documents
    per round trip on both sides, every document visited: ``MongoConnector.find()`` (an
    async iterator) versus ``async for document in collection.find(batch_size=BATCH)``.
    Both cursors are open over the same collection at once and the sides alternate
    getMore-sized slices: ``BATCH`` documents from one cursor, then ``BATCH`` from the
    other (one round trip each), the order swapped every pair;
(b) bulk-insert the same N documents (dicts built before the clock starts) into two fresh
    collections, one per side: ``MongoConnector.insert_many()`` versus
    ``collection.insert_many()``, both unordered, alternating ``CHUNK``-document chunks
    (connector chunk then raw chunk, the order swapped every pair).

Each step (one slice, one chunk) is timed on its own, wall clock and client CPU
(``time.process_time``), so a pair's two steps see the same server state: the drift of
the server between whole-round runs (decision 0074) cancels in each pair's ratio.
Both sides run on the same MongoDB-wire server with the same client settings (the raw
client is built from the connector's ``MongoConfig.client_settings()``). Prints
documents/s (over each side's own steps), peak RSS growth, client CPU per million
documents, and connector/raw ratios (goal: >= 0.95): the median of the per-pair ratios
(the figure to quote, decision 0009) with its quartiles, and the client CPU ratio. The
server comes from CONNECTOR_TEST_MONGO_URL or ``.services.env`` (the FerretDB of
``scripts/services``: its SQLite backend, not the client, sets the pace).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import psutil
from pymongo import AsyncMongoClient

from connector_mongo import MongoConfig, MongoConnector

BATCH = 10_000
CHUNK = 10_000
LOAD_CHUNK = 50_000
DATABASE = "bench_mongo_throughput"
SIDES = ("connector", "raw")


class PeakRss:
    """Samples this process's RSS every few milliseconds in a thread while the two sides
    alternate; ``growth[side]`` is the peak seen while ``side`` was running, above the
    RSS at entry, in MB (both sides' buffers are alive at once when streaming)."""

    def __init__(self, interval: float = 0.005) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.side: str | None = None
        self.growth = dict.fromkeys(SIDES, 0.0)

    def __enter__(self) -> PeakRss:
        gc.collect()
        self._baseline = self._process.memory_info().rss
        self._peak = dict.fromkeys(SIDES, self._baseline)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            side = self.side
            if side is not None:
                self._peak[side] = max(self._peak[side], self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.growth = {side: (peak - self._baseline) / 2**20 for side, peak in self._peak.items()}


class Steps:
    """Per-step wall clock and client CPU of both sides, and each pair's ratio."""

    def __init__(self, rss: PeakRss) -> None:
        self.rss = rss
        self.wall = dict.fromkeys(SIDES, 0.0)
        self.cpu = dict.fromkeys(SIDES, 0.0)
        self.docs = dict.fromkeys(SIDES, 0)
        self.speed_ratios: list[float] = []
        self.cpu_ratios: list[float] = []

    async def pair(self, number: int, work: Mapping[str, Callable[[], Awaitable[int]]]) -> bool:
        """Run one step of each side, the order swapped on odd ``number``s; False once a
        side has nothing left."""
        step: dict[str, tuple[int, float, float]] = {}
        for side in SIDES if number % 2 == 0 else SIDES[::-1]:
            self.rss.side = side
            cpu = time.process_time()
            started = time.perf_counter()
            count = await work[side]()
            elapsed = time.perf_counter() - started
            step[side] = (count, elapsed, time.process_time() - cpu)
            self.rss.side = None
        for side, (count, elapsed, cpu) in step.items():
            self.docs[side] += count
            self.wall[side] += elapsed
            self.cpu[side] += cpu
        (mine, my_wall, my_cpu), (theirs, their_wall, their_cpu) = step["connector"], step["raw"]
        if not mine or not theirs:
            assert mine == theirs, f"sides out of step: {mine} against {theirs} documents"
            return False
        self.speed_ratios.append((mine / my_wall) / (theirs / their_wall))
        if my_cpu > 0 and their_cpu > 0:
            self.cpu_ratios.append((my_cpu / mine) / (their_cpu / theirs))
        return True


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


async def run_pairs(work: Mapping[str, Callable[[], Awaitable[int]]]) -> Steps:
    """Pairs of steps, one per side, until the sides run out, under one RSS sampler."""
    with PeakRss() as rss:
        steps = Steps(rss)
        number = 0
        while await steps.pair(number, work):
            number += 1
    return steps


async def stream_round(mongo: MongoConnector, raw: Any, source: str) -> Steps:
    """Both sides' cursors over ``source``, ``BATCH`` documents from one then the other."""
    cursors = {
        "connector": aiter(mongo.find(source, {}, batch_size=BATCH)),
        "raw": aiter(raw[source].find({}, batch_size=BATCH)),
    }

    def slice_of(side: str) -> Callable[[], Awaitable[int]]:
        cursor = cursors[side]

        async def take() -> int:
            n = 0
            for _ in range(BATCH):
                try:
                    document = await anext(cursor)
                except StopAsyncIteration:
                    break
                n += document["_id"] >= 0
            return n

        return take

    return await run_pairs({side: slice_of(side) for side in SIDES})


async def insert_round(
    mongo: MongoConnector, raw: Any, to_insert: list[dict[str, Any]], profile: bool
) -> Steps:
    """``CHUNK``-document chunks into two fresh collections, one side then the other."""
    targets = {side: f"insert_{side}_{uuid.uuid4().hex[:8]}" for side in SIDES}
    position = dict.fromkeys(SIDES, 0)
    profiler = cProfile.Profile(time.process_time) if profile else None

    async def connector_chunk() -> int:
        chunk = to_insert[position["connector"] : position["connector"] + CHUNK]
        position["connector"] += len(chunk)
        if not chunk:
            return 0
        if profiler:
            profiler.enable()
        result = await mongo.insert_many(targets["connector"], chunk, ordered=False)
        if profiler:
            profiler.disable()
        assert result.ok, result.errors[:3]
        return result.written

    async def raw_chunk() -> int:
        chunk = to_insert[position["raw"] : position["raw"] + CHUNK]
        position["raw"] += len(chunk)
        if not chunk:
            return 0
        await raw[targets["raw"]].insert_many(chunk, ordered=False)
        return len(chunk)

    steps = await run_pairs({"connector": connector_chunk, "raw": raw_chunk})
    for target in targets.values():
        await raw.drop_collection(target)
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return steps


async def main(docs: int, rounds: int, parts: frozenset[str], profile: bool) -> None:
    config = MongoConfig.from_url(server_url(), database=DATABASE, timeout=None)
    mongo = MongoConnector(config)
    await mongo.connect()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(**config.client_settings())
    raw = client[DATABASE]
    source = f"stream_{uuid.uuid4().hex[:8]}"
    await raw.drop_collection(source)
    for start in range(0, docs if "stream" in parts else 0, LOAD_CHUNK):
        chunk = documents(min(LOAD_CHUNK, docs - start), start)
        await raw[source].insert_many(chunk, ordered=False)
    to_insert = documents(docs if "insert" in parts else 0)

    results: dict[str, list[Steps]] = {"stream": [], "insert": []}
    load_before = os.getloadavg()
    print(
        f"documents: {docs:,}; rounds: {rounds}; find slice = batch: {BATCH:,}; insert "
        f"chunk: {CHUNK:,}; load average {load_before[0]:.2f} (2 cores, shared)",
        flush=True,
    )
    for number in range(rounds):
        if "stream" in parts:
            results["stream"].append(await stream_round(mongo, raw, source))
        if "insert" in parts:
            results["insert"].append(await insert_round(mongo, raw, to_insert, profile))
        print(f"  round {number + 1}/{rounds} done", flush=True)
    await raw.drop_collection(source)
    await client.close()
    await mongo.disconnect()
    load_after = os.getloadavg()

    print()
    print(f"{'operation':<24}{'documents/s':>14}{'peak RSS MB':>14}{'CPU s/1M':>12}")
    labels = {
        "stream": "stream (find() vs async for over collection.find()), per getMore slice",
        "insert": "bulk insert (insert_many() vs collection.insert_many()), per chunk",
    }
    summary = []
    for part, rounds_steps in results.items():
        if not rounds_steps:
            continue
        cpu_per_million = {}
        for side in SIDES:
            count = sum(steps.docs[side] for steps in rounds_steps)
            wall = sum(steps.wall[side] for steps in rounds_steps)
            cpu_per_million[side] = sum(s.cpu[side] for s in rounds_steps) * 1e6 / count
            rss = max(steps.rss.growth[side] for steps in rounds_steps)
            print(
                f"{part + '/' + side:<24}{count / wall:>14,.0f}{rss:>14.1f}"
                f"{cpu_per_million[side]:>12.2f}"
            )
        ratios = [r for steps in rounds_steps for r in steps.speed_ratios]
        cpu_ratios = [r for steps in rounds_steps for r in steps.cpu_ratios]
        low, middle, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        verdict = "ok" if middle >= 0.95 else "below 0.95"
        summary.append(
            f"{labels[part]}: median of {len(ratios)} per-pair ratios = "
            f"{statistics.median(ratios):.3f} ({verdict}; quartiles {low:.3f}-{high:.3f}, "
            f"range {min(ratios):.3f}-{max(ratios):.3f}); client CPU ratio = "
            f"{cpu_per_million['connector'] / cpu_per_million['raw']:.3f} (median per pair "
            f"{statistics.median(cpu_ratios) if cpu_ratios else float('nan'):.3f})"
        )
    print()
    print("\n".join(summary))
    print(
        f"noise: load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; the "
        "server runs on the same 2 cores, so each figure includes its work"
    )


def parse(argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k documents, 1 round")
    parser.add_argument("--docs", type=int, default=None, help="documents per stream and insert")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--only", choices=["stream", "insert"], default=None, help="run one part, (a) or (b)"
    )
    parser.add_argument(
        "--profile-insert",
        action="store_true",
        help="cProfile the connector's insert_many calls (client CPU, cumulative, top 25)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse(sys.argv[1:])
    count = args.docs or (100_000 if args.quick else 1_000_000)
    # One round already holds docs / CHUNK pairs per part, the unit of the statistics.
    rounds = args.rounds or 1
    parts = frozenset([args.only] if args.only else ["stream", "insert"])
    asyncio.run(main(count, rounds, parts, args.profile_insert))
