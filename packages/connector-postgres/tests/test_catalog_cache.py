"""Catalog look-ups are cached per name, refreshed when the server says they are stale,
and never weaken the rule that unknown names run nothing."""

from __future__ import annotations

from typing import Any

import pytest

from connector_core import ConfigError, NotFoundError, Stream
from connector_postgres import PostgresConfig, PostgresConnector, Table
from connector_postgres._catalog import CatalogCache


def _table(schema: str, name: str) -> Table:
    return Table(schema, name, "r", Stream(name=name, namespace=schema))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_cache_entries_expire_after_the_ttl() -> None:
    clock = FakeClock()
    cache = CatalogCache(60.0, clock)
    table = _table("public", "users")
    cache.put("users", table)
    assert cache.get("users") is table
    clock.now += 59.9
    assert cache.get("users") is table
    clock.now += 0.2
    assert cache.get("users") is None
    assert len(cache) == 0


def test_a_zero_ttl_caches_nothing() -> None:
    cache = CatalogCache(0.0)
    cache.put("users", _table("public", "users"))
    assert cache.get("users") is None
    assert not cache.enabled


def test_invalidating_a_name_forgets_every_name_of_that_table() -> None:
    cache = CatalogCache(60.0)
    users = _table("public", "users")
    cache.put("users", users)
    cache.put("public.users", users)
    cache.put("orders", _table("public", "orders"))
    cache.invalidate("public.users")
    assert cache.get("users") is None
    assert cache.get("public.users") is None
    assert cache.get("orders") is not None
    cache.invalidate()
    assert len(cache) == 0


def test_catalog_cache_ttl_is_configurable_and_validated() -> None:
    assert PostgresConfig().catalog_cache_ttl == 60.0
    config = PostgresConfig.from_url("postgresql://u@h/db?catalog_cache_ttl=0")
    assert config.catalog_cache_ttl == 0.0
    with pytest.raises(ConfigError, match="catalog_cache_ttl"):
        PostgresConfig(catalog_cache_ttl=-1)


def _catalog_calls(pg: PostgresConnector) -> int:
    op = pg.stats.operations.get("catalog")
    return op.calls if op is not None else 0


@pytest.mark.integration
async def test_repeated_calls_do_not_look_the_table_up_again(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE cached_t (id int PRIMARY KEY, name text)")
    await pg.write("cached_t", [{"id": 1, "name": "a"}])
    looked_up = _catalog_calls(pg)
    assert looked_up > 0
    for i in range(2, 6):
        await pg.write("cached_t", [{"id": i, "name": "b"}])
    await pg.copy_in("cached_t", [(10, "c")], columns=["id", "name"])
    assert len(await pg.sample("cached_t")) == 6
    assert len([r async for r in pg.read("cached_t")]) == 6
    assert b"".join([c async for c in pg.copy_out("cached_t")]).count(b"\n") == 6
    assert _catalog_calls(pg) == looked_up


@pytest.mark.integration
async def test_a_zero_ttl_looks_the_table_up_every_time(
    postgres_database_url: str, config_for: Any
) -> None:
    async with PostgresConnector(config_for(postgres_database_url, catalog_cache_ttl=0)) as pg:
        await pg.execute("CREATE TABLE uncached_t (id int PRIMARY KEY)")
        await pg.write("uncached_t", [{"id": 1}])
        first = _catalog_calls(pg)
        await pg.write("uncached_t", [{"id": 2}])
        assert _catalog_calls(pg) > first


@pytest.mark.integration
async def test_a_dropped_column_refreshes_the_entry_and_the_call_succeeds(
    pg: PostgresConnector,
) -> None:
    await pg.execute("CREATE TABLE drop_col_t (id int PRIMARY KEY, a text, b text)")
    await pg.write("drop_col_t", [{"id": 1, "a": "x", "b": "y"}])
    assert await pg.sample("drop_col_t") == [{"id": 1, "a": "x", "b": "y"}]
    await pg.execute("ALTER TABLE drop_col_t DROP COLUMN b")
    # The cached look-up still names b: the server says 42703, the entry is refreshed.
    assert await pg.sample("drop_col_t") == [{"id": 1, "a": "x"}]
    await pg.execute("ALTER TABLE drop_col_t DROP COLUMN a")
    assert [r async for r in pg.read("drop_col_t")] == [{"id": 1}]
    await pg.execute("ALTER TABLE drop_col_t ADD COLUMN c int")
    # A field the cached entry does not know: looked up again before NotFoundError.
    assert (await pg.write("drop_col_t", [{"id": 2, "c": 7}])).written == 1
    with pytest.raises(NotFoundError, match="known fields: id, c"):
        await pg.write("drop_col_t", [{"id": 3, "nope": 1}])


@pytest.mark.integration
async def test_a_copy_out_with_a_stale_entry_is_refreshed(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE stale_out_t (id int, gone int)")
    await pg.copy_in("stale_out_t", [(1, 2)])
    await pg.execute("ALTER TABLE stale_out_t DROP COLUMN gone")
    assert b"".join([c async for c in pg.copy_out("stale_out_t")]) == b"1\n"


@pytest.mark.integration
async def test_a_recreated_table_is_seen_after_its_stale_entry_fails(
    pg: PostgresConnector,
) -> None:
    await pg.execute("CREATE TABLE again_t (id int PRIMARY KEY, old text)")
    await pg.write("again_t", [{"id": 1, "old": "x"}])
    await pg.execute("DROP TABLE again_t")
    await pg.execute("CREATE TABLE again_t (id int PRIMARY KEY, new text)")
    assert await pg.sample("again_t") == []  # old column: 42703, refreshed, run again
    assert (await pg.write("again_t", [{"id": 1, "new": "y"}])).written == 1
    await pg.execute("DROP TABLE again_t")
    with pytest.raises(NotFoundError, match="'again_t' not found"):
        await pg.write("again_t", [{"id": 2, "new": "z"}])  # 42P01, refreshed: gone


@pytest.mark.integration
async def test_invalidate_catalog_shows_new_columns_at_once(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE inval_t (id int PRIMARY KEY)")
    await pg.write("inval_t", [{"id": 1}])
    await pg.execute("ALTER TABLE inval_t ADD COLUMN extra text DEFAULT 'e'")
    # Within the TTL a new column is not listed yet (nothing failed to say so) ...
    assert await pg.sample("inval_t") == [{"id": 1}]
    pg.invalidate_catalog("inval_t")
    assert await pg.sample("inval_t") == [{"id": 1, "extra": "e"}]
    await pg.execute("ALTER TABLE inval_t ADD COLUMN more int")
    pg.invalidate_catalog()
    assert (await pg.stream_info("inval_t")).columns == ("id", "extra", "more")


@pytest.mark.integration
async def test_cached_names_do_not_let_injection_through(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE victim_t (id int PRIMARY KEY)")
    await pg.write("victim_t", [{"id": 1}])
    for name in ("victim_t; DROP TABLE victim_t", 'victim_t"; DROP TABLE victim_t; --'):
        with pytest.raises(NotFoundError):
            await pg.write(name, [{"id": 2}])
        with pytest.raises(NotFoundError):
            await pg.sample(name)
        with pytest.raises(NotFoundError):
            await pg.write("victim_t", [{"id; DROP TABLE victim_t": 2}])
    assert await pg.query_value("SELECT count(*) FROM victim_t") == 1


@pytest.mark.integration
async def test_what_a_transaction_saw_is_not_cached(pg: PostgresConnector) -> None:
    async def body() -> None:
        async with pg.transaction():
            await pg.execute("CREATE TABLE rolled_back_t (id int PRIMARY KEY)")
            assert (await pg.write("rolled_back_t", [{"id": 1}])).written == 1
            raise RuntimeError("roll back the CREATE TABLE")

    with pytest.raises(RuntimeError):
        await body()
    calls = _catalog_calls(pg)
    with pytest.raises(NotFoundError, match="rolled_back_t"):
        await pg.write("rolled_back_t", [{"id": 1}])
    assert _catalog_calls(pg) > calls  # looked up on the pool, not taken from a cache
