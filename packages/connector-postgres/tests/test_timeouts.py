"""Deadlines that run out are timeouts, whichever deadline it was and wherever it ran out:
the operation's timeout, ``command_timeout``, the bulk deadline, ``connect_timeout``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from connector_core import ConnectionFailedError, ConnectorTimeoutError
from connector_postgres import PostgresConnector
from connector_testing import ToxiproxyClient

pytestmark = pytest.mark.integration

SLOW = "SELECT pg_sleep(3)"


async def _in_transaction(pg: PostgresConnector) -> None:
    async with pg.transaction() as tx:
        await tx.query(SLOW)


async def _stream(pg: PostgresConnector) -> None:
    async for _ in pg.stream(SLOW):
        pass


async def _copy_out(pg: PostgresConnector) -> None:
    async for _ in pg.copy_out_query(SLOW):
        pass


async def _copy_in(pg: PostgresConnector) -> None:
    async def slow_rows() -> AsyncIterator[tuple[int]]:
        yield (1,)
        await asyncio.sleep(3)
        yield (2,)

    await pg.execute("CREATE TABLE IF NOT EXISTS timeout_copy_in (id int)")
    await pg.copy_in("timeout_copy_in", slow_rows())


CALLS: dict[str, Callable[[PostgresConnector], Awaitable[Any]]] = {
    "query": lambda pg: pg.query(SLOW),
    "execute": lambda pg: pg.execute(SLOW),
    "transaction": _in_transaction,
    "stream": _stream,
    "copy_out": _copy_out,
    "copy_in": _copy_in,
}


@pytest.mark.parametrize("call", list(CALLS))
async def test_the_operation_timeout_is_a_timeout_not_a_lost_connection(
    postgres_database_url: str, config_for: Any, call: str
) -> None:
    # The case: TimeoutError is an OSError, and it was translated as an
    # unreachable server ("cannot reach the server (TimeoutError)").
    config = config_for(
        postgres_database_url, timeout=1.0, bulk_timeout=1.0, retry={"max_attempts": 1}
    )
    async with PostgresConnector(config) as pg:
        with pytest.raises(ConnectorTimeoutError) as caught:
            await CALLS[call](pg)
        assert not isinstance(caught.value, ConnectionFailedError)
        assert "timed out" in caught.value.message or "did not finish" in caught.value.message
        assert "cannot reach the server" not in caught.value.message
        assert await pg.query_value("SELECT 1") == 1  # the connector was never "down"


@pytest.mark.parametrize("call", ["query", "transaction", "stream"])
async def test_command_timeout_is_a_final_timeout_naming_it(
    postgres_database_url: str, config_for: Any, call: str
) -> None:
    config = config_for(postgres_database_url, command_timeout=1.0)
    async with PostgresConnector(config) as pg:
        with pytest.raises(ConnectorTimeoutError) as caught:
            await CALLS[call](pg)
        assert "command_timeout=1.0s" in caught.value.message
        assert not caught.value.transient  # the caller's budget: not multiplied by retries
        assert await pg.query_value("SELECT 1") == 1


async def test_opening_a_pooled_connection_that_times_out_is_a_failed_connection(
    postgres_proxy_url: str, toxiproxy: ToxiproxyClient, config_for: Any
) -> None:
    config = config_for(
        postgres_proxy_url,
        pool_min=1,
        pool_max=2,
        connect_timeout=1.0,
        timeout=30.0,
        retry={"max_attempts": 1},
    )
    async with PostgresConnector(config) as pg:
        held = await pg.pool.acquire()  # the next call needs a connection of its own
        try:
            with (
                toxiproxy.toxic("postgres", "timeout", timeout=0),  # a black hole
                pytest.raises(ConnectionFailedError) as caught,
            ):
                await pg.query_value("SELECT 1")
        finally:
            held.terminate()  # it was black-holed too; removing the toxic cuts it
            await pg.pool.release(held)
        assert "connect_timeout" in caught.value.message
        assert caught.value.transient
        assert await pg.query_value("SELECT 1") == 1
