"""read()'s two scans: one server-side cursor (the default) or a keyset query per page.

What is counted comes from the server: ``pg_stat_user_tables`` says how many scans of the
table each read started (seq_scan + idx_scan), after ``pg_stat_force_next_flush()``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest

from connector_core import Checkpoint, ConnectorTimeoutError
from connector_postgres import PostgresConnector, ReadCheckpoint

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg1(postgres_database_url: str, config_for: Any) -> Any:
    """A connector with one pooled connection: a reader that kept it would block the rest."""
    async with PostgresConnector(config_for(postgres_database_url, pool_max=1)) as pg:
        yield pg


async def _scans(pg: PostgresConnector, table: str) -> int:
    """Scans of ``table`` started so far, every backend's pending counts flushed."""
    await pg.query_value("SELECT pg_stat_force_next_flush()")  # flushed when it goes idle
    value = await pg.query_value(
        "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
        " WHERE relid = $1::regclass",
        table,
    )
    return int(value)


async def _ties(pg: PostgresConnector, table: str, rows: int, values: int) -> None:
    await pg.execute(
        f"CREATE TABLE {table} (id int PRIMARY KEY, updated_at int NOT NULL, v text)"
        " WITH (autovacuum_enabled = false);"
        f"INSERT INTO {table} SELECT g, g % {values}, 'v' || g FROM generate_series(1, {rows}) g"
    )


@pytest.mark.parametrize(("scan", "scans"), [("cursor", 1), ("keyset", 31)])
async def test_a_cursor_read_is_one_query_and_one_scan(
    pg1: PostgresConnector, scan: str, scans: int
) -> None:
    table = f"one_scan_{scan}"
    await _ties(pg1, table, 3_000, 5)
    await pg1.read(table, limit=1).__anext__()  # the catalog look-up, cached
    before = await _scans(pg1, table)
    opened = pg1.stats.operations.get("read.open")
    opened_before = opened.calls if opened else 0
    reader = pg1.read(table, cursor_field="updated_at", batch_size=100, scan=scan)  # type: ignore[arg-type]
    assert len([r async for r in reader]) == 3_000
    # 30 full pages and the short one that ends a keyset read; one cursor otherwise.
    assert await _scans(pg1, table) - before == scans
    if scan == "cursor":
        assert pg1.stats.operations["read.open"].calls - opened_before == 1
        assert pg1.stats.operations["read.fetch"].calls >= 30
        assert "read" not in pg1.stats.operations
    else:
        assert pg1.stats.operations["read"].calls == scans


@pytest.mark.parametrize("scan", ["cursor", "keyset"])
async def test_many_rows_on_one_cursor_value_resume_from_a_json_checkpoint_taken_midway(
    pg1: PostgresConnector, scan: str
) -> None:
    # 1,000 rows share updated_at = 0; 200 more spread over 1..4.
    table = f"ties_{scan}"
    await pg1.execute(
        f"CREATE TABLE {table} (id int PRIMARY KEY, updated_at int NOT NULL);"
        f"INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 1000) g;"
        f"INSERT INTO {table} SELECT g, 1 + g % 4 FROM generate_series(1001, 1200) g"
    )
    first: list[int] = []
    async with contextlib.aclosing(
        pg1.read(table, cursor_field="updated_at", batch_size=64, scan=scan)  # type: ignore[arg-type]
    ) as reader:
        async for record in reader:
            first.append(record["id"])
            if len(first) == 333:  # inside a fetch, among the 1,000 ties
                break
        saved = reader.checkpoint.model_dump_json()  # type: ignore[union-attr]
    resumed = ReadCheckpoint.model_validate_json(saved)
    assert (resumed.cursor, resumed.key) == (0, (333,))
    # aclosing() gave the only pooled connection back: the next read can run.
    since = Checkpoint.model_validate_json(saved)
    rest = [
        r["id"]
        async for r in pg1.read(
            table,
            cursor_field="updated_at",
            since=since,
            batch_size=64,
            scan=scan,  # type: ignore[arg-type]
        )
    ]
    seen = first + rest
    assert len(seen) == len(set(seen)) == 1200
    assert seen == sorted(range(1, 1201), key=lambda i: (0 if i <= 1000 else 1 + i % 4, i))


async def test_a_missing_index_is_hinted_once_with_the_create_index_that_helps(
    pg: PostgresConnector, caplog: pytest.LogCaptureFixture
) -> None:
    await _ties(pg, "hinted", 50, 5)
    caplog.set_level(logging.WARNING, logger="connector.postgres")
    for scan in ("cursor", "keyset", "cursor"):
        assert len([r async for r in pg.read("hinted", cursor_field="updated_at", scan=scan)]) == 50  # type: ignore[arg-type]
    hints = [r.getMessage() for r in caplog.records if "CREATE INDEX" in r.getMessage()]
    assert len(hints) == 1, hints
    assert 'CREATE INDEX CONCURRENTLY ON "public"."hinted" ("updated_at", "id")' in hints[0]
    # With an index that leads with the cursor column there is nothing to say; by key
    # alone the primary key's index gives the order.
    await pg.execute("CREATE TABLE indexed (LIKE hinted INCLUDING ALL)")
    await pg.execute("CREATE INDEX ON indexed (updated_at)")
    caplog.clear()
    assert [r async for r in pg.read("indexed", cursor_field="updated_at")] == []
    assert [r async for r in pg.read("hinted", limit=1)] != []
    assert not [r for r in caplog.records if "CREATE INDEX" in r.getMessage()]


async def test_the_first_fetch_of_a_cursor_read_has_the_scan_deadline(
    postgres_database_url: str, config_for: Any
) -> None:
    # A view whose scan takes 3 s before its first row: longer than timeout (2 s), well
    # within the scan's deadline (10 x timeout: the view has no row estimate).
    config = config_for(postgres_database_url, timeout=2.0, retry={"max_attempts": 1})
    async with PostgresConnector(config) as pg:
        await _ties(pg, "slow_base", 30, 3)
        await pg.execute(
            "CREATE VIEW slow_scan AS SELECT id, updated_at FROM slow_base"
            " WHERE (SELECT true FROM pg_sleep(3))"
        )
        assert config.bulk_deadline(None) == 20.0
        reader = pg.read("slow_scan", cursor_field="updated_at", key_fields=["id"], batch_size=7)
        assert len([r async for r in reader]) == 30
        # Each keyset page is bounded by timeout alone: its first page runs out.
        keyset = pg.read("slow_scan", cursor_field="updated_at", key_fields=["id"], scan="keyset")
        with pytest.raises(ConnectorTimeoutError, match=r"timed out after 2\.0s"):
            await anext(keyset)


async def test_inside_the_callers_transaction_a_read_leaves_the_connection_free_between_rows(
    pg: PostgresConnector,
) -> None:
    # On a transaction of its own the reader fetches the next batch while it hands out
    # this one; in the caller's it must not, since the caller may use the connection.
    await _ties(pg, "in_tx", 100, 4)
    async with pg.transaction(isolation="repeatable_read") as tx:
        ids = []
        async for record in pg.read("in_tx", cursor_field="updated_at", batch_size=10):
            ids.append(record["id"])
            assert await tx.query_value("SELECT count(*) FROM in_tx") == 100
    assert sorted(ids) == list(range(1, 101))
