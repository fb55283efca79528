"""connector-file versus a raw aiofiles line loop with the stdlib json module, same run,
interleaved rounds, medians.

    uv run --no-sync python benchmarks/file_throughput.py [--quick] [--lines N] [--rounds R]

(a) read an N-line NDJSON file, every record decoded and visited:
    ``FileConnector.read()`` versus ``async for line in aiofiles.open(...)`` +
    ``json.loads(line)``;
(b) write the same N records (dicts built before the clock starts) to a new file:
    ``FileConnector.write(mode="replace")`` (temporary file, fsync, rename) versus
    ``await f.write(json.dumps(record) + "\\n")`` per record through aiofiles, then one
    fsync (the same durability);
(c) for reference, the fastest peer: a plain synchronous ``open()`` loop with json
    (no event loop, no threads), and the JSON codecs alone (stdlib json, orjson,
    msgspec) per line, in CPU time (decision 0111).

Each round runs connector and raw back to back, the order alternating. Prints lines/s
and client CPU per million lines, and connector/raw ratios (goal: >= 0.95): the ratio of
the medians and the median of each round's own ratio (the figure to quote). The load
average before and after is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiofiles
import msgspec
import orjson

from connector_file import FileConfig, FileConnector


def records(count: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"user-{i}", "email": f"user{i}@example.com", "score": i * 0.5}
        for i in range(count)
    ]


async def timed(work: Callable[[], Awaitable[int]]) -> tuple[float, float]:
    """(lines per second, CPU seconds per million lines)."""
    wall, cpu = time.perf_counter(), time.process_time()
    count = await work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, cpu / count * 1e6


def codecs(lines: list[bytes], rows: list[dict[str, Any]]) -> None:
    decoder, encoder = msgspec.json.Decoder(), msgspec.json.Encoder()
    std = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    cases: dict[str, Callable[[], object]] = {
        "loads json": lambda: [json.loads(line) for line in lines],
        "loads orjson": lambda: [orjson.loads(line) for line in lines],
        "loads msgspec": lambda: [decoder.decode(line) for line in lines],
        "dumps json": lambda: [std.encode(row).encode() for row in rows],
        "dumps orjson": lambda: [orjson.dumps(row) for row in rows],
        "dumps msgspec": lambda: [encoder.encode(row) for row in rows],
    }
    print(f"\n{'codec alone':<16}{'CPU us/line (best of 5)':>26}")
    for name, case in cases.items():
        best = min(_cpu(case) for _ in range(5))
        print(f"{name:<16}{best / len(lines) * 1e6:>26.3f}")


def _cpu(case: Callable[[], object]) -> float:
    start = time.process_time()
    case()
    return time.process_time() - start


def prepare(count: int) -> tuple[Path, Path, list[dict[str, Any]]]:
    directory = Path(tempfile.mkdtemp(prefix="file-bench-"))
    rows = records(count)
    source = directory / "source.ndjson"
    source.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows))
    return directory, source, rows


async def main(count: int, rounds: int) -> None:
    directory, source, rows = prepare(count)
    results: dict[str, list[tuple[float, float]]] = {}
    config = FileConfig(root=directory, timeout=600)

    async with FileConnector(config) as files:

        async def connector_read() -> int:
            seen = 0
            async for record in files.read("source.ndjson"):
                seen += record["id"] >= 0
            return seen

        async def raw_read() -> int:
            seen = 0
            async with aiofiles.open(source, "rb") as f:
                async for line in f:
                    seen += json.loads(line)["id"] >= 0
            return seen

        async def connector_write() -> int:
            result = await files.write("out-connector.ndjson", rows, mode="replace")
            assert result.ok
            return result.written

        async def raw_write() -> int:
            async with aiofiles.open(directory / "out-raw.ndjson", "w") as f:
                for row in rows:
                    await f.write(json.dumps(row) + "\n")
                await f.flush()
                os.fsync(f.fileno())
            return len(rows)

        def sync_read() -> int:
            with source.open("rb") as f:
                return sum(json.loads(line)["id"] >= 0 for line in f)

        async def peer_read() -> int:
            return sync_read()

        pairs = {
            "read": (connector_read, raw_read),
            "write": (connector_write, raw_write),
        }
        load_before = os.getloadavg()
        for number in range(rounds):
            for part, (mine, theirs) in pairs.items():
                order = [("connector", mine), ("raw", theirs)]
                if number % 2:
                    order.reverse()
                for side, work in order:
                    results.setdefault(f"{part} {side}", []).append(await timed(work))
            results.setdefault("read sync open() peer", []).append(await timed(peer_read))
        load_after = os.getloadavg()

    def median(name: str, index: int) -> float:
        return statistics.median(v[index] for v in results[name])

    print(f"{count:,} NDJSON lines, {rounds} interleaved rounds, Python {sys.version.split()[0]}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'operation':<26}{'lines/s (median)':>18}{'CPU s/1M':>12}")
    for name in results:
        print(f"{name:<26}{median(name, 0):>18,.0f}{median(name, 1):>12.2f}")
    print()
    for part in pairs:
        mine, theirs = results[f"{part} connector"], results[f"{part} raw"]
        ratio = median(f"{part} connector", 0) / median(f"{part} raw", 0)
        per_round = statistics.median(m[0] / t[0] for m, t in zip(mine, theirs, strict=True))
        cpu = median(f"{part} raw", 1) / median(f"{part} connector", 1)
        print(
            f"{part}: connector / raw = {ratio:.3f}; median of per-round ratios = "
            f"{per_round:.3f}; raw CPU / connector CPU = {cpu:.3f} (goal: >= 0.95)"
        )
    sample = min(count, 200_000)
    codecs([json.dumps(r).encode() for r in rows[:sample]], rows[:sample])
    shutil.rmtree(directory)


def parse(argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 lines, 2 rounds")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.quick:
        args.lines, args.rounds = 50_000, 2
    return args


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    asyncio.run(main(options.lines, options.rounds))
