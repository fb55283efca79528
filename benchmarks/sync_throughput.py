"""StreamSync PostgreSQL -> PostgreSQL against a raw asyncpg cursor into
copy_records_to_table, on the same table, in interleaved rounds.

    uv run --no-sync python benchmarks/sync_throughput.py [--quick] [--rounds N]

A table of ROWS rows (1,000,000; --quick: 100,000) in schema ``bench_sync_src`` is copied
into a fresh table of schema ``bench_sync_dst`` each round: by the sync (batches of
10,000, a checkpoint in a PostgresStateStore after each batch, the sink table created
from the discovered stream, upserts) and by the raw driver (a server-side cursor in a
REPEATABLE READ transaction, fetch 10,000 at a time, copy_records_to_table into a
pre-created table, no checkpoints). Prints records/s of both, the per-round ratios and
their median, client CPU time, peak RSS and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import asyncpg
import psutil

from connector_core.sync import StreamSync
from connector_postgres import PostgresConnector, PostgresStateStore

URL = os.environ.get(
    "CONNECTOR_TEST_POSTGRES_URL", "postgresql://connector:connector@127.0.0.1:55432/connector_test"
)
SRC, DST = "bench_sync_src", "bench_sync_dst"
DDL = "(id bigint PRIMARY KEY, name text NOT NULL, score double precision, at timestamptz)"


async def prepare(rows: int) -> None:
    conn = await asyncpg.connect(URL)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SRC} CASCADE; CREATE SCHEMA {SRC}")
        await conn.execute(f"CREATE TABLE {SRC}.items {DDL}")
        await conn.execute(
            f"INSERT INTO {SRC}.items SELECT i, 'name ' || i, i * 0.5, "
            "now() - i * interval '1 second' FROM generate_series(1, $1) i",
            rows,
        )
        await conn.execute(f"ANALYZE {SRC}.items")
    finally:
        await conn.close()


async def reset_sink() -> None:
    conn = await asyncpg.connect(URL)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {DST} CASCADE; CREATE SCHEMA {DST}")
    finally:
        await conn.close()


async def run_sync() -> int:
    async with (
        PostgresConnector.from_url(URL, schemas=(SRC,), timeout=600.0) as src,
        PostgresConnector.from_url(URL, schemas=(DST,), timeout=600.0) as dst,
    ):
        state = PostgresStateStore(dst, table=f"{DST}.sync_state")
        sync = StreamSync(src, "items", dst, state=state, batch_size=10_000)
        report = await sync.run()
        return report.records


async def run_raw() -> int:
    reader = await asyncpg.connect(URL)
    writer = await asyncpg.connect(URL)
    try:
        await writer.execute(f"CREATE TABLE {DST}.items {DDL}")
        count = 0
        async with reader.transaction(isolation="repeatable_read", readonly=True):
            cursor = await reader.cursor(f"SELECT * FROM {SRC}.items ORDER BY id")
            while rows := await cursor.fetch(10_000):
                await writer.copy_records_to_table(
                    "items", schema_name=DST, records=[tuple(r) for r in rows]
                )
                count += len(rows)
        return count
    finally:
        await reader.close()
        await writer.close()


async def timed(fn: object) -> tuple[float, float, int]:
    await reset_sink()
    cpu, wall = time.process_time(), time.perf_counter()
    count = await fn()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu, count


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rows = 100_000 if args.quick else 1_000_000
    rounds = args.rounds or (2 if args.quick else 5)
    await prepare(rows)
    process = psutil.Process()
    base_rss = process.memory_info().rss
    peak = {"sync": 0, "raw": 0}
    results: dict[str, list[tuple[float, float]]] = {"sync": [], "raw": []}
    ratios = []
    for i in range(rounds):
        order = [("sync", run_sync), ("raw", run_raw)]
        if i % 2:
            order.reverse()
        got = {}
        for name, fn in order:
            wall, cpu, count = await timed(fn)
            assert count == rows, (name, count)
            peak[name] = max(peak[name], process.memory_info().rss - base_rss)
            results[name].append((wall, cpu))
            got[name] = wall
        ratios.append(got["raw"] / got["sync"])
        print(
            f"round {i + 1}: sync {rows / got['sync']:,.0f} rec/s, raw {rows / got['raw']:,.0f} "
            f"rec/s, ratio {ratios[-1]:.3f}",
            flush=True,
        )
    for name in ("sync", "raw"):
        walls = [w for w, _ in results[name]]
        cpus = [c for _, c in results[name]]
        print(
            f"{name}: median {rows / statistics.median(walls):,.0f} records/s, client CPU "
            f"{statistics.median(cpus):.2f} s, RSS growth {peak[name] / 2**20:.1f} MB "
            "(process-wide, cumulative)"
        )
    print(f"median ratio sync/raw: {statistics.median(ratios):.3f} (goal >= 0.8)")
    print(f"load average: {os.getloadavg()}")
    conn = await asyncpg.connect(URL)
    try:
        await conn.execute(
            f"DROP SCHEMA IF EXISTS {SRC} CASCADE; DROP SCHEMA IF EXISTS {DST} CASCADE"
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
