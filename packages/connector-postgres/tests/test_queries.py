"""query/execute/transactions and error mapping against the real server."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connector_core import (
    AuthenticationError,
    ConflictError,
    ConnectionFailedError,
    ConnectorTimeoutError,
    InvalidRequestError,
    LifecycleEvent,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
)
from connector_postgres import PostgresConnector, PostgresTransaction, TransactionRollbackError

pytestmark = pytest.mark.integration


async def test_query_methods_bind_parameters(pg: PostgresConnector) -> None:
    rows = await pg.query("SELECT g AS n, $1::text AS label FROM generate_series(1, 3) g", "x")
    assert [(r["n"], r["label"]) for r in rows] == [(1, "x"), (2, "x"), (3, "x")]
    row = await pg.query_one("SELECT $1::int + 1 AS v", 41)
    assert row is not None
    assert row["v"] == 42
    assert await pg.query_one("SELECT 1 WHERE false") is None
    assert await pg.query_value("SELECT $1::text || '!'", "hi") == "hi!"
    assert await pg.query_value("SELECT 1, 2", column=1) == 2


async def test_execute_reports_status_and_rowcount(pg: PostgresConnector) -> None:
    created = await pg.execute("CREATE TABLE exec_t (id int PRIMARY KEY, v text)")
    assert created.status == "CREATE TABLE"
    assert created.rowcount is None
    await pg.execute_many("INSERT INTO exec_t VALUES ($1, $2)", [(1, "a"), (2, "b"), (3, "c")])
    updated = await pg.execute("UPDATE exec_t SET v = 'z' WHERE id >= $1", 2)
    assert (updated.status, updated.rowcount) == ("UPDATE 2", 2)


def _typed_value() -> dict[str, Any]:
    return {
        "id": 1,
        "j": {"a": [1, 2, {"b": None}]},
        "jb": {"nested": {"x": 1.5, "ok": True, "text": "é\"'"}},
        "jbs": [{"k": 1}, None, {"l": [1, "two"]}],
        "u": uuid.uuid4(),
        "n": Decimal("12345678901234.123456"),
        "ts": dt.datetime(2026, 11, 22, 10, 30, 0, 123456, tzinfo=dt.UTC),
        "tags": ["a", "b, c", 'quote"d', None],
        "matrix": [[1, 2], [3, 4]],
        "b": bytes(range(256)),
        "m": "happy",
        "d": dt.date(2024, 2, 29),
    }


@pytest.mark.parametrize("path", ["upsert", "staged-upsert", "insert", "copy_in"])
async def test_value_round_trips(postgres_database_url: str, config_for: Any, path: str) -> None:
    # Every write path: pipelined upsert (INSERT ... ON CONFLICT), upsert through a
    # binary COPY into a staging table, insert through binary COPY, copy_in.
    config = config_for(
        postgres_database_url, upsert_copy_threshold=1 if path == "staged-upsert" else 1000
    )
    suffix = path.replace("-", "_")
    async with PostgresConnector(config) as pg:
        await pg.execute(f"CREATE TYPE mood_{suffix} AS ENUM ('sad', 'ok', 'happy')")
        await pg.execute(
            f"""CREATE TABLE types_{suffix} (
                id int PRIMARY KEY, j json, jb jsonb, jbs jsonb[], u uuid, n numeric(20, 6),
                ts timestamptz, tags text[], matrix int[], b bytea, m mood_{suffix}, d date)"""
        )
        value = _typed_value()
        table = f"types_{suffix}"
        if path == "copy_in":
            assert await pg.copy_in(table, [tuple(value.values())]) == 1
        else:
            mode = "insert" if path == "insert" else "upsert"
            result = await pg.write(table, [value], mode=mode)
            assert result.ok, result.errors
            assert result.written == 1
        [back] = await pg.sample(table, 1)
        assert back == value
        row = await pg.query_one(
            f"SELECT * FROM {table} WHERE u = $1 AND m = $2 AND jb = $3",
            value["u"],
            "happy",
            value["jb"],
        )
        assert row is not None
        assert dict(row) == value
        # What the server stored is the JSON itself, not a quoted string of it.
        assert await pg.query_value(f"SELECT jb ->> 'nested' FROM {table}") is not None
        assert await pg.query_value(f"SELECT j ->> 'a' FROM {table}") == '[1, 2, {"b": null}]'


async def test_json_as_text_still_copies(postgres_database_url: str, config_for: Any) -> None:
    config = config_for(postgres_database_url, decode_json=False)
    async with PostgresConnector(config) as pg:
        await pg.execute("CREATE TABLE json_text_t (id int PRIMARY KEY, j json, jb jsonb)")
        records = [{"id": 1, "j": '{"a": 1}', "jb": '{"b": 2}'}]
        assert (await pg.write("json_text_t", records, mode="insert")).written == 1
        row = await pg.query_one("SELECT j, jb FROM json_text_t")
        assert row is not None
        assert (row["j"], row["jb"]) == ('{"a": 1}', '{"b": 2}')


async def test_prefer_with_a_client_certificate_still_connects(
    postgres_database_url: str, config_for: Any, client_cert: tuple[Path, Path]
) -> None:
    # The test server does not offer TLS: prefer falls back to plain text, with the
    # certificate files loaded (a bad one would fail; see test_config).
    cert, key = client_cert
    config = config_for(postgres_database_url, sslmode="prefer", sslcert=cert, sslkey=key)
    async with PostgresConnector(config) as pg:
        assert await pg.query_value("SELECT 1") == 1


async def test_unique_violation_is_a_conflict(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE uniq_t (id int PRIMARY KEY)")
    await pg.execute("INSERT INTO uniq_t VALUES (1)")
    with pytest.raises(ConflictError) as caught:
        await pg.execute("INSERT INTO uniq_t VALUES (1)")
    assert caught.value.details["sqlstate"] == "23505"
    assert "uniq_t_pkey" in caught.value.details["server_message"]
    assert not caught.value.transient


async def test_other_sql_errors_carry_sqlstate_and_server_message(pg: PostgresConnector) -> None:
    with pytest.raises(QueryError) as caught:
        await pg.query("SELECT 1/0")
    assert caught.value.details["sqlstate"] == "22012"
    assert caught.value.details["server_message"] == "division by zero"
    assert "division by zero" in str(caught.value)
    with pytest.raises(QueryError) as syntax:
        await pg.query("SELEC 1")
    assert syntax.value.details["sqlstate"] == "42601"


async def test_undefined_table_is_not_found(pg: PostgresConnector) -> None:
    with pytest.raises(NotFoundError) as caught:
        await pg.query("SELECT * FROM no_such_table")
    assert caught.value.details["sqlstate"] == "42P01"


async def test_statement_timeout_is_a_timeout_error(
    postgres_database_url: str, config_for: Any
) -> None:
    async with PostgresConnector(config_for(postgres_database_url, statement_timeout=0.2)) as pg:
        with pytest.raises(ConnectorTimeoutError) as caught:
            await pg.query("SELECT pg_sleep(5)")
        assert caught.value.details["sqlstate"] == "57014"
        assert await pg.query_value("SELECT 1") == 1


async def test_wrong_password_is_an_authentication_error_that_hides_it(
    secret_role_url: str, caplog: pytest.LogCaptureFixture, config_for: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-pass-8e1f0c"
    config = config_for(secret_role_url)
    config = type(config).model_validate({**config.model_dump(), "password": wrong})
    connector = PostgresConnector(config)
    with pytest.raises(AuthenticationError) as caught:
        await connector.connect()
    assert caught.value.details["sqlstate"] == "28P01"
    texts = [str(caught.value), repr(caught.value), str(caught.value.__cause__), caplog.text]
    assert all(wrong not in text for text in texts)


async def test_missing_privilege_is_permission_denied(
    pg: PostgresConnector, secret_role_url: str, postgres_database_url: str, config_for: Any
) -> None:
    await pg.execute("CREATE TABLE private_t (id int)")
    await pg.execute("REVOKE ALL ON private_t FROM PUBLIC")
    role_url = secret_role_url.rsplit("/", 1)[0] + "/" + postgres_database_url.rsplit("/", 1)[1]
    async with PostgresConnector(config_for(role_url)) as limited:
        with pytest.raises(PermissionDeniedError) as caught:
            await limited.query("SELECT * FROM private_t")
    assert caught.value.details["sqlstate"] == "42501"


async def test_transaction_commits_and_nested_blocks_are_savepoints(
    pg: PostgresConnector,
) -> None:
    await pg.execute("CREATE TABLE tx_t (id int PRIMARY KEY)")

    async def failing_savepoint(tx: PostgresTransaction) -> None:
        async with tx.transaction() as inner:
            assert inner.depth == 1
            await inner.execute("INSERT INTO tx_t VALUES (2)")
            assert await inner.query_value("SELECT count(*) FROM tx_t") == 2
            raise RuntimeError("undo the savepoint only")

    async with pg.transaction() as tx:
        await tx.execute("INSERT INTO tx_t VALUES (1)")
        with pytest.raises(RuntimeError):
            await failing_savepoint(tx)
        async with tx.transaction() as inner:
            await inner.execute("INSERT INTO tx_t VALUES (3)")
        # Uncommitted work is invisible to other connections (another task is not part
        # of this task's transaction).
        assert await asyncio.create_task(pg.query_value("SELECT count(*) FROM tx_t")) == 0
    assert [r["id"] for r in await pg.query("SELECT id FROM tx_t ORDER BY id")] == [1, 3]
    with pytest.raises(InvalidRequestError):
        await tx.query("SELECT 1")


async def test_transaction_rolls_back_on_exception(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE tx_exc_t (id int)")

    async def body() -> None:
        async with pg.transaction() as tx:
            await tx.execute("INSERT INTO tx_exc_t VALUES (1)")
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        await body()
    assert await pg.query_value("SELECT count(*) FROM tx_exc_t") == 0


@pytest.mark.parametrize("while_in", ["python", "query"])
async def test_transaction_rolls_back_on_cancellation(pg: PostgresConnector, while_in: str) -> None:
    table = f"tx_cancel_{while_in}"
    await pg.execute(f"CREATE TABLE {table} (id int)")
    inserted = asyncio.Event()

    async def work() -> None:
        async with pg.transaction() as tx:
            await tx.execute(f"INSERT INTO {table} VALUES (1)")
            inserted.set()
            if while_in == "python":
                await asyncio.sleep(3600)
            else:
                await tx.query("SELECT pg_sleep(3600)")

    task = asyncio.create_task(work())
    await asyncio.wait_for(inserted.wait(), 10)
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await pg.query_value(f"SELECT count(*) FROM {table}") == 0
    # The aborted transaction holds no lock: a writer gets through at once.
    async with asyncio.timeout(10):
        await pg.execute(f"ALTER TABLE {table} ADD COLUMN extra int")
    assert await pg.query_value("SELECT 1") == 1


async def test_statements_inside_a_transaction_are_never_retried(pg: PostgresConnector) -> None:
    retries: list[str] = []
    pg.on(LifecycleEvent.RETRY, lambda info: retries.append(str(info.operation)))

    async def body() -> None:
        async with pg.transaction() as tx:
            pid = await tx.query_value("SELECT pg_backend_pid()")
            # From another task: this task's pg.query() would run inside the transaction.
            await asyncio.create_task(pg.query("SELECT pg_terminate_backend($1)", pid))
            await tx.query("SELECT 1")

    with pytest.raises(ConnectionFailedError):
        await body()
    assert not [op for op in retries if op.startswith("transaction.")]


async def test_serialization_failure_is_a_transient_rollback_error(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE ser_t (id int, v int)")
    await pg.execute("INSERT INTO ser_t VALUES (1, 0), (2, 0)")

    async def body() -> None:
        async with (
            pg.transaction(isolation="serializable") as t1,
            pg.transaction(isolation="serializable", independent=True) as t2,
        ):
            await t1.query("SELECT sum(v) FROM ser_t")
            await t2.query("SELECT sum(v) FROM ser_t")
            await t1.execute("UPDATE ser_t SET v = v + 1 WHERE id = 1")
            await t2.execute("UPDATE ser_t SET v = v + 1 WHERE id = 2")

    with pytest.raises(TransactionRollbackError) as caught:
        await body()
    assert caught.value.details["sqlstate"] == "40001"
    assert caught.value.transient


async def test_deadlock_is_a_transient_rollback_error(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE dl_t (id int PRIMARY KEY, v int)")
    await pg.execute("INSERT INTO dl_t VALUES (1, 0), (2, 0)")
    both_locked = asyncio.Barrier(2)

    async def worker(first: int, second: int) -> None:
        async with pg.transaction() as tx:
            await tx.execute("UPDATE dl_t SET v = v + 1 WHERE id = $1", first)
            await both_locked.wait()
            await tx.execute("UPDATE dl_t SET v = v + 1 WHERE id = $1", second)

    results = await asyncio.gather(worker(1, 2), worker(2, 1), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], TransactionRollbackError)
    assert errors[0].details["sqlstate"] == "40P01"
    assert errors[0].transient


async def test_readonly_transaction_refuses_writes(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE ro_t (id int)")

    async def body() -> None:
        async with pg.transaction(readonly=True, isolation="repeatable_read") as tx:
            await tx.execute("INSERT INTO ro_t VALUES (1)")

    with pytest.raises(QueryError) as caught:
        await body()
    assert caught.value.details["sqlstate"] == "25006"

    async def deferrable_writer() -> None:
        async with pg.transaction(deferrable=True):
            pass

    with pytest.raises(InvalidRequestError):
        await deferrable_writer()


async def test_session_settings_reach_every_connection(
    pg: PostgresConnector, postgres_database_url: str, config_for: Any
) -> None:
    await pg.execute('CREATE SCHEMA IF NOT EXISTS "Sales"')
    await pg.execute('CREATE TABLE IF NOT EXISTS "Sales".orders (id int PRIMARY KEY)')
    config = config_for(
        postgres_database_url,
        application_name="settings-test",
        search_path="Sales,public",
        schemas="Sales,public",
        statement_timeout=7,
        server_settings={"timezone": "Asia/Tokyo"},
        decode_json=False,
    )
    async with PostgresConnector(config) as conn:
        row = await conn.query_one(
            "SELECT current_setting('application_name') AS app, "
            "current_setting('search_path') AS path, "
            "current_setting('statement_timeout') AS timeout, "
            "current_setting('TimeZone') AS tz, '{\"a\": 1}'::jsonb AS doc"
        )
        assert row is not None
        assert dict(row) == {
            "app": "settings-test",
            "path": '"Sales", "public"',
            "timeout": "7s",
            "tz": "Asia/Tokyo",
            "doc": '{"a": 1}',
        }
        # Unqualified SQL and bare stream names both find the table in "Sales".
        assert await conn.query_value("SELECT count(*) FROM orders") == 0
        assert (await conn.write("orders", [{"id": 1}])).written == 1
        assert await conn.sample("Sales.orders") == [{"id": 1}]
