"""Streaming, COPY, upserts and write results against the real server."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import sys
from typing import Any

import pytest

from connector_core import ErrorCode, InvalidRequestError, NotFoundError
from connector_postgres import PostgresConnector

pytestmark = pytest.mark.integration

MILLION = 1_000_000


# Run in a fresh interpreter so the baseline is not blurred by memory that earlier tests
# allocated and freed (the allocator may hand it back to this stream, hiding growth).
_STREAM_SCRIPT = """
import asyncio, gc, json, os, sys
import psutil
from connector_postgres import PostgresConfig, PostgresConnector

async def main() -> None:
    config = PostgresConfig.from_url(os.environ["STREAM_TEST_URL"], pool_min=1, pool_max=1)
    process = psutil.Process()
    async with PostgresConnector(config) as pg:
        await pg.query_value("SELECT 1")  # imports, codecs and the pool are warm
        gc.collect()
        baseline = peak = process.memory_info().rss
        count = total = 0
        async for row in pg.stream(
            "SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, $1) g",
            int(sys.argv[1]),
            batch_size=5_000,
        ):
            count += 1
            total += row["id"]
            if count % 50_000 == 0:
                peak = max(peak, process.memory_info().rss)
        peak = max(peak, process.memory_info().rss)
    print(json.dumps({"count": count, "total": total, "growth": peak - baseline}))

asyncio.run(main())
"""


async def test_streaming_a_million_rows_keeps_memory_flat(postgres_database_url: str) -> None:
    # ~250 MB if the result were held in memory at once; a cursor holds one batch.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _STREAM_SCRIPT,
        str(MILLION),
        env={**os.environ, "STREAM_TEST_URL": postgres_database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["count"] == MILLION
    assert result["total"] == MILLION * (MILLION + 1) // 2
    growth_mb = result["growth"] / 2**20
    assert growth_mb < 100, f"peak RSS grew by {growth_mb:.0f} MB"


async def test_stream_batches_yields_every_row_in_batch_size_lists(
    pg: PostgresConnector,
) -> None:
    sql = "SELECT g AS n FROM generate_series(1, $1) g"
    batches = [b async for b in pg.stream_batches(sql, 2_500, batch_size=1_000)]
    assert [len(b) for b in batches] == [1_000, 1_000, 500]
    assert [r["n"] for b in batches for r in b] == list(range(1, 2_501))
    # An exact multiple ends without an empty list.
    exact = [len(b) async for b in pg.stream_batches(sql, 2_000, batch_size=1_000)]
    assert exact == [1_000, 1_000]
    with pytest.raises(InvalidRequestError):
        [b async for b in pg.stream_batches(sql, 10, batch_size=-1)]
    # Inside a transaction: its cursor runs there and sees the uncommitted rows.
    async with pg.transaction() as tx:
        await tx.execute("CREATE TEMPORARY TABLE sb_t ON COMMIT DROP AS SELECT 1 AS n")
        await tx.execute("INSERT INTO sb_t SELECT generate_series(2, 5)")
        inside = [
            [r["n"] for r in b]
            async for b in pg.stream_batches("SELECT n FROM sb_t ORDER BY n", batch_size=2)
        ]
        assert inside == [[1, 2], [3, 4], [5]]
        via_tx = [len(b) async for b in tx.stream_batches("SELECT n FROM sb_t", batch_size=3)]
        assert via_tx == [3, 2]
        per_row = [r["n"] async for r in pg.stream("SELECT n FROM sb_t ORDER BY n", batch_size=2)]
        assert per_row == [1, 2, 3, 4, 5]


async def test_stream_stopped_early_gives_its_connection_back(pg: PostgresConnector) -> None:
    async with contextlib.aclosing(pg.stream("SELECT generate_series(1, 100000) AS n")) as rows:
        async for row in rows:
            if row["n"] == 10:
                break
    idle = pg.pool.get_idle_size()
    assert idle == pg.pool.get_size()
    assert await pg.query_value("SELECT 1") == 1


async def test_copy_in_a_million_rows(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE copy_t (id bigint PRIMARY KEY, name text, score float8)")
    rows = ((i, f"name-{i}", i / 7) for i in range(MILLION))
    copied = await pg.copy_in("copy_t", rows, columns=["id", "name", "score"])
    assert copied == MILLION
    summary = await pg.query_one("SELECT count(*) AS n, sum(id) AS s, max(name) AS m FROM copy_t")
    assert summary is not None
    assert summary["n"] == MILLION
    assert summary["s"] == MILLION * (MILLION - 1) // 2
    assert summary["m"] == "name-999999"


async def test_copy_in_rejects_unknown_tables_and_columns(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE copy_cols (id int)")
    with pytest.raises(NotFoundError, match="copy_cols"):
        await pg.copy_in("no_such_table", [(1,)])
    with pytest.raises(NotFoundError, match="known fields: id"):
        await pg.copy_in("copy_cols", [(1,)], columns=["nope"])


async def test_copy_in_inside_a_transaction_sees_the_new_table(pg: PostgresConnector) -> None:
    async with pg.transaction() as tx:
        await tx.execute("CREATE TABLE copy_tx (id int, v text)")
        assert await tx.copy_in("copy_tx", [(1, "a"), (2, "b")]) == 2
        assert await tx.query_value("SELECT count(*) FROM copy_tx") == 2
    assert await pg.query_value("SELECT count(*) FROM copy_tx") == 2


@pytest.mark.parametrize("size", [10, 5_000], ids=["pipelined", "copy-staged"])
async def test_upsert_inserts_and_updates_by_primary_key(pg: PostgresConnector, size: int) -> None:
    table = f"upsert_{size}"
    await pg.execute(
        f"CREATE TABLE {table} (id int PRIMARY KEY, name text NOT NULL, "
        "note text DEFAULT 'default-note', version int)"
    )
    first = [{"id": i, "name": f"v1-{i}", "version": 1} for i in range(size)]
    assert (await pg.write(table, first)).written == size
    half = size // 2
    # A non-default value in a column the upsert records do not carry, on rows that
    # the upsert updates: it must be kept, not reset to the default.
    await pg.execute(f"UPDATE {table} SET note = 'kept-' || id WHERE id >= $1", half)
    # Half updated, half new; one key twice (the later record wins).
    second = [{"id": i, "name": f"v2-{i}", "version": 2} for i in range(half, size + half)]
    second.append({"id": size // 2, "name": "v3-last-wins", "version": 3})
    result = await pg.write(table, second)
    assert result.ok
    assert result.written == len(second)
    rows = {r["id"]: r for r in await pg.query(f"SELECT * FROM {table}")}
    assert len(rows) == size + size // 2
    assert rows[0]["name"] == "v1-0"
    assert rows[0]["version"] == 1
    assert rows[size // 2]["name"] == "v3-last-wins"
    assert rows[size - 1]["name"] == f"v2-{size - 1}"
    assert rows[size + size // 2 - 1]["version"] == 2
    # Columns not in the records keep their value on update and get their default on
    # insert.
    assert {rows[i]["note"] for i in range(half)} == {"default-note"}
    assert all(rows[i]["note"] == f"kept-{i}" for i in range(half, size))
    assert {rows[i]["note"] for i in range(size, size + half)} == {"default-note"}


@pytest.mark.parametrize("size", [10, 5_000], ids=["pipelined", "copy-staged"])
async def test_upsert_by_a_composite_primary_key(pg: PostgresConnector, size: int) -> None:
    table = f"upsert_composite_{size}"
    await pg.execute(
        f"CREATE TABLE {table} (tenant text, id int, v int NOT NULL, note text, "
        "PRIMARY KEY (tenant, id))"
    )
    first = [{"tenant": t, "id": i, "v": 1} for t in ("a", "b") for i in range(size // 2)]
    assert (await pg.write(table, first)).written == size
    await pg.execute(f"UPDATE {table} SET note = 'kept'")
    # Same ids under tenant "a" (updates) and under a new tenant "c" (inserts): only the
    # pair identifies a row.
    second = [{"tenant": t, "id": i, "v": 2} for t in ("a", "c") for i in range(size // 2)]
    second.append({"tenant": "a", "id": 0, "v": 3})  # the later record wins
    result = await pg.write(table, second)
    assert result.ok, result.errors
    rows = {(r["tenant"], r["id"]): r for r in await pg.query(f"SELECT * FROM {table}")}
    assert len(rows) == size // 2 * 3
    assert rows[("a", 0)]["v"] == 3
    assert {rows[("a", i)]["v"] for i in range(1, size // 2)} == {2}
    assert {rows[("b", i)]["v"] for i in range(size // 2)} == {1}
    assert {rows[("c", i)]["v"] for i in range(size // 2)} == {2}
    assert {rows[("a", i)]["note"] for i in range(size // 2)} == {"kept"}
    assert {rows[("c", i)]["note"] for i in range(size // 2)} == {None}


@pytest.mark.parametrize("in_transaction", [False, True], ids=["alone", "in-transaction"])
async def test_staged_upserts_never_use_a_permanent_table_named_like_their_stage(
    postgres_database_url: str, config_for: Any, in_transaction: bool
) -> None:
    # search_path ending in pg_temp is a common hardening (a temporary table can no longer
    # shadow a permanent one); an unqualified stage name then resolves to a permanent
    # table of that name in public. Someone planted one, with rows.
    config = config_for(
        postgres_database_url, search_path=("public", "pg_temp"), upsert_copy_threshold=2
    )
    suffix = "tx" if in_transaction else "alone"
    target, planted = f"staged_target_{suffix}", "connector_postgres_upsert_stage"
    async with PostgresConnector(config) as pg:
        await pg.execute(
            f"CREATE TABLE {target} (id int PRIMARY KEY, v text);"
            f"CREATE TABLE IF NOT EXISTS public.{planted} (id int, v text);"
            f"TRUNCATE public.{planted};"
            f"INSERT INTO public.{planted} VALUES (1, 'planted'), (666, 'planted')"
        )
        try:
            context = pg.transaction() if in_transaction else contextlib.nullcontext()
            async with context:
                for attempt in ("first", "second"):  # later upserts must work too
                    batch = [{"id": 1, "v": attempt}, {"id": 2, "v": attempt}]
                    result = await pg.write(target, batch)
                    assert result.ok, result.errors
                    rows = await pg.query(f"SELECT id, v FROM {target} ORDER BY id")
                    assert [tuple(r) for r in rows] == [(1, attempt), (2, attempt)]
            rows = await pg.query(f"SELECT * FROM public.{planted} ORDER BY id")
            assert [tuple(r) for r in rows] == [(1, "planted"), (666, "planted")]  # untouched
        finally:
            await pg.execute(f"DROP TABLE public.{planted}")


@pytest.mark.parametrize("size", [10, 5_000], ids=["pipelined", "copy-staged"])
async def test_a_rejected_record_leaves_the_batch_unwritten(
    pg: PostgresConnector, size: int
) -> None:
    table = f"atomic_{size}"
    await pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text NOT NULL)")
    await pg.write(table, [{"id": 0, "name": "before"}])
    batch = [{"id": i, "name": f"n{i}"} for i in range(size)]
    batch[size // 2] = {"id": size // 2, "name": None}
    result = await pg.write(table, batch)
    assert not result.ok
    assert (result.written, result.failed) == (0, size)
    [error] = result.errors
    assert "not-null" in error.message
    assert error.code is ErrorCode.QUERY
    rows = await pg.query(f"SELECT id, name FROM {table}")
    assert [tuple(r) for r in rows] == [(0, "before")]


async def test_insert_mode_names_the_failing_record(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE insert_t (id int PRIMARY KEY, name text)")
    await pg.write("insert_t", [{"id": 7, "name": "seven"}])
    batch = [{"id": i, "name": "x"} for i in range(5, 10) if i != 7] + [{"id": 7, "name": "y"}]
    result = await pg.write("insert_t", batch, mode="insert")
    assert (result.written, result.failed) == (0, len(batch))
    [error] = result.errors
    assert (error.index, error.key, error.code) == (len(batch) - 1, 7, ErrorCode.CONFLICT)
    bad_value = [{"id": 1, "name": "a"}, {"id": "two", "name": "b"}]
    result = await pg.write("insert_t", bad_value, mode="insert")
    [error] = result.errors
    assert (error.index, error.code) == (1, ErrorCode.SERIALIZATION)
    assert await pg.query_value("SELECT count(*) FROM insert_t") == 1


async def test_records_of_another_shape_are_reported(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE shape_t (id int PRIMARY KEY, a text, b text)")
    short = [{"id": 1, "a": "x", "b": "y"}, {"id": 2, "a": "x"}]
    [error] = (await pg.write("shape_t", short)).errors
    assert (error.index, error.key) == (1, 2)
    renamed = [{"id": 1, "a": "x"}, {"id": 2, "b": "y"}]
    [error] = (await pg.write("shape_t", renamed)).errors
    assert error.index == 1
    assert await pg.query_value("SELECT count(*) FROM shape_t") == 0


async def test_write_refuses_what_it_cannot_do(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE nopk_t (a int)")
    await pg.execute("CREATE VIEW view_t AS SELECT 1 AS a")
    assert (await pg.write("nopk_t", [{"a": 1}])).written == 1  # no key: plain insert
    with pytest.raises(InvalidRequestError, match="primary key"):
        await pg.write("nopk_t", [{"a": 1}], mode="upsert")
    with pytest.raises(InvalidRequestError, match="view"):
        await pg.write("view_t", [{"a": 1}])
    with pytest.raises(NotFoundError, match="known fields: a"):
        await pg.write("nopk_t", [{"b": 1}])
    assert (await pg.write("nopk_t", [])).written == 0


async def test_copy_out_yields_the_table_as_csv(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE out_t (id int, name text)")
    await pg.copy_in("out_t", [(i, f"n,{i}") for i in range(20_000)])
    chunks = [chunk async for chunk in pg.copy_out("out_t", columns=["name", "id"], header=True)]
    assert all(isinstance(c, bytes) for c in chunks)
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert rows[0] == ["name", "id"]
    assert rows[1:3] == [["n,0", "0"], ["n,1", "1"]]
    assert len(rows) == 20_001
    query_chunks = [
        c async for c in pg.copy_out_query("SELECT id FROM out_t WHERE id < $1 ORDER BY id", 3)
    ]
    assert b"".join(query_chunks) == b"0\n1\n2\n"


async def test_copy_out_stopped_early_releases_its_connection(pg: PostgresConnector) -> None:
    async with contextlib.aclosing(
        pg.copy_out_query("SELECT g, repeat('y', 200) FROM generate_series(1, 500000) g")
    ) as chunks:
        async for _ in chunks:
            break
    for _ in range(200):  # the COPY's connection comes back in the background
        if pg.pool.get_idle_size() == pg.pool.get_size():
            break
        await asyncio.sleep(0.05)
    assert pg.pool.get_idle_size() == pg.pool.get_size()
    assert await pg.query_value("SELECT 1") == 1


@pytest.mark.parametrize("mode", ["insert", "upsert"])
@pytest.mark.parametrize(
    ("at", "bad"),
    [
        (4_095, {"id": 4_095, "a": "x", "b": "y", "extra": 1}),  # last of the first chunk
        (4_096, {"id": 4_096, "a": "x"}),  # first of the second chunk, a field short
        (9_000, {"id": 9_000, "a": "x", "c": "y"}),  # same count, another field
        (9_999, {"id": 9_999, "a": "x", "b": "y", "extra": 1}),  # the very last record
    ],
    ids=["extra-end-of-chunk", "missing-start-of-chunk", "renamed", "extra-last"],
)
async def test_a_record_of_another_shape_anywhere_is_named_and_nothing_is_written(
    pg: PostgresConnector, mode: str, at: int, bad: dict[str, object]
) -> None:
    table = f"shape_big_{mode}"
    await pg.execute(f"CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY, a text, b text)")
    batch: list[dict[str, object]] = [{"id": i, "a": "x", "b": "y"} for i in range(10_000)]
    batch[at] = bad
    result = await pg.write(table, batch, mode=mode)  # type: ignore[arg-type]
    assert (result.written, result.failed) == (0, len(batch))
    [error] = result.errors
    assert (error.index, error.key, error.code) == (at, at, ErrorCode.INVALID_REQUEST)
    assert "first record's fields" in error.message
    assert await pg.query_value(f"SELECT count(*) FROM {table}") == 0


@pytest.mark.parametrize("mode", ["insert", "upsert"])
async def test_a_value_the_driver_cannot_encode_is_named_in_a_later_chunk(
    pg: PostgresConnector, mode: str
) -> None:
    table = f"encode_big_{mode}"
    await pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, n int)")
    batch: list[dict[str, object]] = [{"id": i, "n": i} for i in range(10_000)]
    batch[8_200] = {"id": 8_200, "n": "not a number"}
    result = await pg.write(table, batch, mode=mode)  # type: ignore[arg-type]
    [error] = result.errors
    assert (error.index, error.key, error.code) == (8_200, 8_200, ErrorCode.SERIALIZATION)
    assert await pg.query_value(f"SELECT count(*) FROM {table}") == 0


@pytest.mark.parametrize("mode", ["insert", "upsert"])
async def test_a_secret_the_driver_cannot_encode_is_a_masked_record_error(
    pg: PostgresConnector,
    secret_role_url: str,
    postgres_database_url: str,
    config_for: Any,
    mode: str,
) -> None:
    # The driver's reason quotes the value ("invalid UUID 'pw-...'"); here the value is
    # the connector's own password. The road scrubs such a reason out of the chain of
    # causes, so the write must not depend on finding it there.
    table = f"secret_uuid_{mode}"
    await pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, u uuid)")
    await pg.execute(f"GRANT ALL ON {table} TO PUBLIC")
    role_url = secret_role_url.rsplit("/", 1)[0] + "/" + postgres_database_url.rsplit("/", 1)[1]
    # upsert_copy_threshold=1: the upsert is staged through COPY too (the driver encodes
    # the records as it sends them); a pipelined upsert's error comes from the server.
    config = config_for(role_url, upsert_copy_threshold=1)
    password = config.password.get_secret_value()
    async with PostgresConnector(config) as writer:
        batch = [{"id": 1, "u": "8f14e45f-ceea-467f-a0e6-1b5c8f6e9d2a"}, {"id": 2, "u": password}]
        result = await writer.write(table, batch, mode=mode)  # type: ignore[arg-type]
    [error] = result.errors
    assert (error.index, error.key, error.code) == (1, 2, ErrorCode.SERIALIZATION)
    assert "invalid UUID '***'" in error.message
    assert password not in repr(result)
    assert await pg.query_value(f"SELECT count(*) FROM {table}") == 0


async def test_write_of_a_million_records_in_insert_mode(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE write_million (id bigint PRIMARY KEY, name text, v float8)")
    records = [{"id": i, "name": f"n{i}", "v": i / 3} for i in range(MILLION)]
    result = await pg.write("write_million", records, mode="insert")
    assert (result.written, result.failed) == (MILLION, 0)
    summary = await pg.query_one("SELECT count(*) AS n, sum(id) AS s FROM write_million")
    assert summary is not None
    assert (summary["n"], summary["s"]) == (MILLION, MILLION * (MILLION - 1) // 2)
