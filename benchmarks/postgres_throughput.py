"""connector-postgres versus raw asyncpg, same run, interleaved rounds, medians.

    uv run --no-sync python benchmarks/postgres_throughput.py [--quick] [--rows N] [--rounds R]

(a) stream rows, ``BATCH`` rows per round trip, every row visited, as two pairs:
    batch-level: ``PostgresConnector.stream_batches()`` vs a raw asyncpg cursor in a
    transaction read with ``cursor.fetch(BATCH)`` in a loop (the headline for the goal);
    row-level: ``PostgresConnector.stream()`` vs ``async for row in
    connection.cursor(sql, prefetch=BATCH)`` (asyncpg's idiomatic row iterator);
(b) bulk insert of the same 1,000,000 dict records (``write``'s input), as two pairs:
    same input (the figure for the goal): ``PostgresConnector.write(mode="insert")``
    (binary COPY) vs ``asyncpg.copy_records_to_table`` fed
    ``map(operator.itemgetter(*columns), records)``, the cheapest way a raw caller turns
    those records into the tuples the driver takes (no shape check);
    prebuilt tuples (stricter, for transparency): ``write`` vs ``copy_records_to_table``
    handed tuples built before the clock starts, and ``PostgresConnector.copy_in`` given
    those same tuples;
(c) asyncpg ``executemany`` on the same insert, for contrast (fewer rows: it is slow);
(d) incremental read of a table of the same size whose cursor ``updated_at`` takes
    5,000 distinct values: ``PostgresConnector.read(t, cursor_field="updated_at",
    batch_size=BATCH)`` (dicts out) vs ``async for row in connection.cursor("SELECT *
    FROM t ORDER BY updated_at, id", prefetch=BATCH)`` in a transaction (the headline,
    goal >= 0.9), on two copies of the table: without an index on (updated_at, id) (one
    sort) and with one; also the raw cursor turning each row into a dict (the same
    output as read()) and, with the index only, ``read(scan="keyset")`` (without it every
    page sorts the table again: hours at this size).

Prints rows/s and peak RSS growth of each, and connector/raw ratios (goal: >= 0.95): the
ratio of the medians, and the median of each round's own ratio (connector and raw run
back to back in a round, so that one is less swayed by load that drifts between rounds).
The server comes from CONNECTOR_TEST_POSTGRES_URL or the ``.services.env`` file written
by ``scripts/services up``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import operator
import os
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from connector_postgres import PostgresConnector

STREAM_SQL = "SELECT g AS id, md5(g::text) AS digest, g * 0.5 AS half FROM generate_series(1, $1) g"
TABLE = "bench_postgres_throughput"
READ_TABLES = {"noindex": "bench_postgres_read_noindex", "index": "bench_postgres_read_index"}
CURSOR_VALUES = 5_000
BATCH = 2_000


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
    """Run ``work`` (which returns a row count); returns (rows per second, peak RSS growth
    in MB, this process's CPU seconds per million rows)."""
    with PeakRss() as rss:
        cpu = time.process_time()
        started = time.perf_counter()
        rows = await work()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return rows / elapsed, rss.growth, cpu * 1_000_000 / rows


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
    url = os.environ.get("CONNECTOR_TEST_POSTGRES_URL") or _from_services_env(
        "CONNECTOR_TEST_POSTGRES_URL"
    )
    if not url:
        sys.exit("no PostgreSQL: run `scripts/services up` or set CONNECTOR_TEST_POSTGRES_URL")
    return url


async def main(rows: int, rounds: int, many_rows: int, parts: frozenset[str]) -> None:
    url = server_url()
    pg = PostgresConnector.from_url(url, pool_min=2, pool_max=2, timeout=None)
    await pg.connect()
    raw = await asyncpg.create_pool(url, min_size=2, max_size=2)
    assert raw is not None
    await raw.execute(
        f"DROP TABLE IF EXISTS {TABLE}; "
        f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, name text NOT NULL, score float8)"
        # No autovacuum ANALYZE of the last million rows running under the next insert.
        " WITH (autovacuum_enabled = false)"
    )
    # Server-side noise: a checkpoint started by one insert's WAL would slow whichever
    # insert comes next. Each insert starts right after a CHECKPOINT when we may run one.
    can_checkpoint = bool(
        await raw.fetchval(
            "SELECT rolsuper OR pg_has_role(current_user, 'pg_checkpoint', 'MEMBER')"
            " FROM pg_roles WHERE rolname = current_user"
        )
    )
    tuples = [(i, f"name-{i}", i / 3) for i in range(rows)]
    dicts = [{"id": i, "name": f"name-{i}", "score": i / 3} for i in range(rows)]

    async def connector_stream_batches() -> int:
        n = 0
        async for batch in pg.stream_batches(STREAM_SQL, rows, batch_size=BATCH):
            for row in batch:
                n += row[0] > 0
        return n

    async def raw_stream_batches() -> int:
        n = 0
        async with raw.acquire() as connection, connection.transaction():
            cursor = await connection.cursor(STREAM_SQL, rows)
            while batch := await cursor.fetch(BATCH):
                for row in batch:
                    n += row[0] > 0
        return n

    async def connector_stream_rows() -> int:
        n = 0
        async for row in pg.stream(STREAM_SQL, rows, batch_size=BATCH):
            n += row[0] > 0
        return n

    async def raw_stream_rows() -> int:
        n = 0
        async with raw.acquire() as connection, connection.transaction():
            async for row in connection.cursor(STREAM_SQL, rows, prefetch=BATCH):
                n += row[0] > 0
        return n

    async def connector_write() -> int:
        result = await pg.write(TABLE, dicts, mode="insert")
        assert result.ok, result.errors
        return result.written

    async def connector_copy_in() -> int:
        return await pg.copy_in(TABLE, tuples, columns=["id", "name", "score"])

    async def raw_copy() -> int:
        async with raw.acquire() as connection:
            await connection.copy_records_to_table(
                TABLE, records=tuples, columns=["id", "name", "score"]
            )
        return rows

    async def raw_copy_records() -> int:
        columns = ["id", "name", "score"]
        async with raw.acquire() as connection:
            await connection.copy_records_to_table(
                TABLE, records=map(operator.itemgetter(*columns), dicts), columns=columns
            )
        return rows

    async def raw_executemany() -> int:
        async with raw.acquire() as connection:
            await connection.executemany(
                f"INSERT INTO {TABLE} (id, name, score) VALUES ($1, $2, $3)",
                tuples[:many_rows],
            )
        return many_rows

    async def truncate() -> None:
        await raw.execute(f"TRUNCATE {TABLE}")
        if can_checkpoint:
            await raw.execute("CHECKPOINT")

    if "read" in parts:
        for state, table in READ_TABLES.items():
            await raw.execute(
                f"DROP TABLE IF EXISTS {table}; "
                f"CREATE TABLE {table} (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL,"
                " name text NOT NULL, score float8) WITH (autovacuum_enabled = false)"
            )
            # Rows in id order, cursor values cycling: the table is not in cursor order.
            await raw.execute(
                f"INSERT INTO {table} SELECT g, timestamptz '2026-01-01' + (g % {CURSOR_VALUES})"
                " * interval '1 minute', 'name-' || g, g / 3.0"
                f" FROM generate_series(1, {int(rows)}) g"
            )
            if state == "index":
                await raw.execute(f"CREATE INDEX ON {table} (updated_at, id)")
            await raw.execute(f"VACUUM ANALYZE {table}")

    def connector_read(table: str, scan: str = "cursor") -> Callable[[], Awaitable[int]]:
        async def work() -> int:
            n = 0
            reader = pg.read(table, cursor_field="updated_at", batch_size=BATCH, scan=scan)  # type: ignore[arg-type]
            async for record in reader:
                n += record["id"] > 0
            return n

        return work

    def raw_read(table: str, *, dicts: bool = False) -> Callable[[], Awaitable[int]]:
        sql = f"SELECT * FROM {table} ORDER BY updated_at, id"

        async def work() -> int:
            n = 0
            async with raw.acquire() as connection, connection.transaction():
                if dicts:
                    async for row in connection.cursor(sql, prefetch=BATCH):
                        n += dict(row)["id"] > 0
                else:
                    async for row in connection.cursor(sql, prefetch=BATCH):
                        n += row[0] > 0
            return n

        return work

    results: dict[str, list[tuple[float, float, float]]] = {}

    def record(name: str, value: tuple[float, float, float]) -> None:
        results.setdefault(name, []).append(value)

    print(
        f"rows: {rows:,} (executemany: {many_rows:,}); rounds: {rounds}; batch: {BATCH}",
        flush=True,
    )
    for round_number in range(rounds):
        # Alternate who goes first so warm caches favour neither side.
        order = ["connector", "raw"] if round_number % 2 == 0 else ["raw", "connector"]
        if "stream" in parts:
            streams = {
                "stream": (connector_stream_batches, raw_stream_batches),
                "stream_rows": (connector_stream_rows, raw_stream_rows),
            }
            for what, (connector_work, raw_work) in streams.items():
                for side in order:
                    work = connector_work if side == "connector" else raw_work
                    record(f"{what}/{side}", await timed(work))
        if "insert" in parts:
            # Rotated each round: over 4k rounds each variant runs k times in each slot.
            inserts = [
                ("raw", raw_copy_records),
                ("connector", connector_write),
                ("raw_tuples", raw_copy),
                ("copy_in", connector_copy_in),
            ]
            shift = round_number % len(inserts)
            for side, work in inserts[shift:] + inserts[:shift]:
                await truncate()
                record(f"insert/{side}", await timed(work))
            await truncate()
            record("insert/executemany", await timed(raw_executemany))
        if "read" in parts:
            reads: list[tuple[str, Callable[[], Awaitable[int]]]] = []
            for state, table in READ_TABLES.items():
                reads += [
                    (f"read_{state}/connector", connector_read(table)),
                    (f"read_{state}/raw", raw_read(table)),
                    (f"read_{state}/raw_dicts", raw_read(table, dicts=True)),
                ]
            reads.append(("read_index/keyset", connector_read(READ_TABLES["index"], "keyset")))
            shift = round_number % len(reads)
            for name, work in reads[shift:] + reads[:shift]:
                record(name, await timed(work))
        print(f"  round {round_number + 1}/{rounds} done", flush=True)

    await raw.execute(f"DROP TABLE IF EXISTS {TABLE}")
    for table in READ_TABLES.values():
        await raw.execute(f"DROP TABLE IF EXISTS {table}")
    await raw.close()
    await pg.disconnect()

    def median(name: str) -> tuple[float, float, float]:
        values = results[name]
        return (
            statistics.median(v[0] for v in values),
            statistics.median(v[1] for v in values),
            statistics.median(v[2] for v in values),
        )

    print()
    print(f"{'operation':<24}{'rows/s (median)':>18}{'peak RSS MB':>14}{'client CPU s/1M':>18}")
    for name in results:
        speed, rss, cpu = median(name)
        print(f"{name:<24}{speed:>18,.0f}{rss:>14.1f}{cpu:>18.2f}")
    print()
    pairs = {
        "stream (batches: stream_batches vs cursor.fetch)": ("stream/connector", "stream/raw"),
        "stream (rows: stream() vs async for over cursor)": (
            "stream_rows/connector",
            "stream_rows/raw",
        ),
        "insert (same dicts: write vs copy_records_to_table)": (
            "insert/connector",
            "insert/raw",
        ),
        "insert (write vs copy_records_to_table of prebuilt tuples)": (
            "insert/connector",
            "insert/raw_tuples",
        ),
        "insert (copy_in vs copy_records_to_table, same tuples)": (
            "insert/copy_in",
            "insert/raw_tuples",
        ),
        "read, no index (read() vs async for over a cursor)": (
            "read_noindex/connector",
            "read_noindex/raw",
        ),
        "read, index on (updated_at, id) (read() vs async for over a cursor)": (
            "read_index/connector",
            "read_index/raw",
        ),
        "read, no index (read() vs the raw cursor making dicts)": (
            "read_noindex/connector",
            "read_noindex/raw_dicts",
        ),
        "read, index (read() vs the raw cursor making dicts)": (
            "read_index/connector",
            "read_index/raw_dicts",
        ),
        "read, index (read(scan='keyset') vs async for over a cursor)": (
            "read_index/keyset",
            "read_index/raw",
        ),
    }
    goals = {"read": 0.9}
    for label, (mine, theirs) in pairs.items():
        if mine not in results:
            continue
        ratio = median(mine)[0] / median(theirs)[0]
        paired = statistics.median(
            c[0] / r[0] for c, r in zip(results[mine], results[theirs], strict=True)
        )
        cpu = median(mine)[2] / median(theirs)[2]
        goal = goals.get(label.split(",")[0], 0.95)
        verdict = "ok" if paired >= goal else f"below {goal}"
        print(
            f"{label}: connector / raw = {ratio:.3f} ({verdict}); "
            f"median of per-round ratios = {paired:.3f}; client CPU ratio = {cpu:.3f}"
        )
    if "insert/executemany" in results:
        contrast = median("insert/executemany")[0] / median("insert/raw_tuples")[0]
        print(f"insert: executemany / copy = {contrast:.3f} (for contrast)")


def parse(argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k rows, 2 rounds: a smoke run")
    parser.add_argument("--rows", type=int, default=None, help="rows per stream and insert")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--only",
        choices=["stream", "insert", "read"],
        default=None,
        help="run one part: (a), (b) and (c), or (d)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse(sys.argv[1:])
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    rounds = args.rounds or (2 if args.quick else 5)
    parts = frozenset([args.only] if args.only else ["stream", "insert", "read"])
    asyncio.run(main(rows, rounds, many_rows=max(1, rows // 10), parts=parts))
