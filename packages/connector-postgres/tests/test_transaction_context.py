"""connector.transaction() nested in the same task is a savepoint, and the connector's own
calls made inside a transaction block run in that transaction."""

from __future__ import annotations

import asyncio

import pytest

from connector_core import (
    ConnectionFailedError,
    InvalidRequestError,
    LifecycleEvent,
    NotFoundError,
)
from connector_postgres import PostgresConnector

pytestmark = pytest.mark.integration


async def _other_task(pg: PostgresConnector, sql: str) -> object:
    """``sql``'s value as seen from another task (never part of this task's transaction)."""
    return await asyncio.create_task(pg.query_value(sql))


async def test_nested_connector_transactions_are_savepoints_on_one_connection(
    pg: PostgresConnector,
) -> None:
    await pg.execute("CREATE TABLE nest_t (id int PRIMARY KEY)")

    async def failing_inner() -> None:
        async with pg.transaction() as inner:
            assert inner.depth == 1
            await inner.execute("INSERT INTO nest_t VALUES (2)")
            raise RuntimeError("undo the savepoint only")

    async with pg.transaction() as outer:
        assert outer.depth == 0
        pid = await outer.query_value("SELECT pg_backend_pid()")
        await outer.execute("INSERT INTO nest_t VALUES (1)")
        with pytest.raises(RuntimeError):
            await failing_inner()
        async with pg.transaction() as inner:
            assert inner.depth == 1
            assert await inner.query_value("SELECT pg_backend_pid()") == pid
            async with pg.transaction() as innermost:
                assert innermost.depth == 2
                await innermost.execute("INSERT INTO nest_t VALUES (3)")
        # Still one transaction: nothing is visible to anyone else yet.
        assert await _other_task(pg, "SELECT count(*) FROM nest_t") == 0
        assert await outer.query_value("SELECT count(*) FROM nest_t") == 2
    ids = [r["id"] for r in await pg.query("SELECT id FROM nest_t ORDER BY id")]
    assert ids == [1, 3]


async def test_an_exception_in_the_outer_block_undoes_released_savepoints(
    pg: PostgresConnector,
) -> None:
    await pg.execute("CREATE TABLE nest_undo_t (id int)")

    async def body() -> None:
        async with pg.transaction():
            async with pg.transaction() as inner:
                await inner.execute("INSERT INTO nest_undo_t VALUES (1)")
            raise LookupError("after the savepoint was released")

    with pytest.raises(LookupError):
        await body()
    assert await pg.query_value("SELECT count(*) FROM nest_undo_t") == 0


async def test_connector_calls_inside_a_transaction_run_on_its_connection(
    pg: PostgresConnector,
) -> None:
    await pg.execute("CREATE TABLE inside_t (id int PRIMARY KEY, name text)")

    async def body() -> None:
        async with pg.transaction() as tx:
            pid = await tx.query_value("SELECT pg_backend_pid()")
            assert await pg.query_value("SELECT pg_backend_pid()") == pid
            assert (await pg.query_one("SELECT pg_backend_pid() AS p"))["p"] == pid  # type: ignore[index]
            assert [r[0] for r in await pg.query("SELECT pg_backend_pid()")] == [pid]
            assert (await pg.execute("INSERT INTO inside_t VALUES (1, 'a')")).rowcount == 1
            await pg.execute_many("INSERT INTO inside_t VALUES ($1, $2)", [(2, "b"), (3, "c")])
            assert await pg.copy_in("inside_t", [(4, "d")]) == 1
            assert (await pg.write("inside_t", [{"id": 5, "name": "e"}])).written == 1
            # Reads see the transaction's own uncommitted rows ...
            assert [r["n"] async for r in pg.stream("SELECT id AS n FROM inside_t")] == [
                1,
                2,
                3,
                4,
                5,
            ]
            assert [r["id"] async for r in pg.read("inside_t")] == [1, 2, 3, 4, 5]
            assert len(await pg.sample("inside_t")) == 5
            # ... and no other task does, and a task of its own is not part of it.
            assert await _other_task(pg, "SELECT count(*) FROM inside_t") == 0
            assert await _other_task(pg, "SELECT pg_backend_pid()") != pid
            raise RuntimeError("roll it all back")

    with pytest.raises(RuntimeError):
        await body()
    assert await pg.query_value("SELECT count(*) FROM inside_t") == 0
    # Once the block is over, calls go to the pool again.
    assert await pg.query_value("SELECT 1") == 1


async def test_a_table_created_inside_a_transaction_is_usable_by_connector_calls(
    pg: PostgresConnector,
) -> None:
    async def body(commit: bool) -> None:
        async with pg.transaction() as tx:
            await tx.execute("CREATE TABLE made_in_tx (id int PRIMARY KEY, v text)")
            assert (await pg.write("made_in_tx", [{"id": 1, "v": "x"}])).written == 1
            assert await pg.sample("made_in_tx") == [{"id": 1, "v": "x"}]
            if not commit:
                raise RuntimeError("roll the table back")

    with pytest.raises(RuntimeError):
        await body(commit=False)
    with pytest.raises(NotFoundError):
        await pg.sample("made_in_tx")
    await body(commit=True)
    assert await pg.query_value("SELECT count(*) FROM made_in_tx") == 1


async def test_writes_inside_a_transaction_are_savepoints(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE tx_write_t (id int PRIMARY KEY, name text NOT NULL)")
    big = [{"id": i, "name": f"n{i}"} for i in range(1_500)]  # staged through COPY
    async with pg.transaction():
        assert (await pg.write("tx_write_t", big)).written == len(big)
        # A second staged upsert in the same transaction (the stage table is dropped).
        again = [{"id": i, "name": f"m{i}"} for i in range(1_500)]
        assert (await pg.write("tx_write_t", again)).written == len(again)
        rejected = await pg.write("tx_write_t", [{"id": 9_999, "name": None}], mode="insert")
        assert (rejected.written, rejected.failed) == (0, 1)
        # The rejected batch rolled back to its savepoint: the transaction goes on.
        assert await pg.query_value("SELECT count(*) FROM tx_write_t") == 1_500
        assert await _other_task(pg, "SELECT count(*) FROM tx_write_t") == 0
    assert await pg.query_value("SELECT count(*) FROM tx_write_t") == 1_500
    assert await pg.query_value("SELECT min(name) FROM tx_write_t") == "m0"


async def test_statements_inside_are_never_retried_even_through_the_connector(
    pg: PostgresConnector,
) -> None:
    retries: list[str] = []
    pg.on(LifecycleEvent.RETRY, lambda info: retries.append(str(info.operation)))

    async def body() -> None:
        async with pg.transaction():
            pid = await pg.query_value("SELECT pg_backend_pid()")
            await _other_task(pg, f"SELECT pg_terminate_backend({int(pid)})")
            await pg.query("SELECT 1")  # a read, but inside a transaction: not retried

    with pytest.raises(ConnectionFailedError):
        await body()
    assert retries == []
    assert not tx_retry_stats(pg)


def tx_retry_stats(pg: PostgresConnector) -> dict[str, int]:
    return {
        name: op.retries
        for name, op in pg.stats.operations.items()
        if name.startswith("transaction.") and op.retries
    }


async def test_nested_transactions_cannot_change_isolation(pg: PostgresConnector) -> None:
    async with pg.transaction(isolation="serializable"):
        with pytest.raises(InvalidRequestError, match="outermost"):
            async with pg.transaction(isolation="read_committed"):
                pass
        with pytest.raises(InvalidRequestError, match="outermost"):
            async with pg.transaction(readonly=True):
                pass
        assert await pg.query_value("SHOW transaction_isolation") == "serializable"


async def test_an_independent_transaction_uses_another_connection(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE indep_t (id int)")
    async with pg.transaction() as outer:
        outer_pid = await outer.query_value("SELECT pg_backend_pid()")
        async with pg.transaction(independent=True) as other:
            assert other.depth == 0
            assert await pg.query_value("SELECT pg_backend_pid()") != outer_pid
            await pg.execute("INSERT INTO indep_t VALUES (1)")
        assert await pg.query_value("SELECT pg_backend_pid()") == outer_pid
    assert await pg.query_value("SELECT count(*) FROM indep_t") == 1


async def test_concurrent_tasks_each_get_their_own_transaction(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE tasks_t (task int, pid int)")
    both_inside = asyncio.Barrier(2)

    async def worker(n: int) -> int:
        async with pg.transaction():
            pid: int = await pg.query_value("SELECT pg_backend_pid()")
            await both_inside.wait()
            await pg.execute("INSERT INTO tasks_t VALUES ($1, pg_backend_pid())", n)
            return pid

    pids = await asyncio.gather(worker(1), worker(2))
    assert pids[0] != pids[1]
    rows = {r["task"]: r["pid"] for r in await pg.query("SELECT task, pid FROM tasks_t")}
    assert rows == {1: pids[0], 2: pids[1]}
