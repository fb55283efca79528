"""No call waits for ever, with the default deadlines, on a link that went silent.

Toxiproxy's ``timeout`` toxic with ``timeout=0`` black-holes a link: the connection stays
open and nothing comes back. Each test puts a guard around the call that would hang; the
guard is only there so that a regression fails instead of blocking the run.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from connector_core import ConnectionFailedError, ConnectorTimeoutError, InvalidRequestError
from connector_postgres import PostgresConfig, PostgresConnector
from connector_testing import ToxiproxyClient

pytestmark = pytest.mark.integration

GUARD = 60  # seconds: far beyond every deadline below


async def _write(pg: PostgresConnector, table: str) -> Any:
    return await pg.write(table, [{"id": 1, "v": "x"}])


async def _copy_in(pg: PostgresConnector, table: str) -> Any:
    return await pg.copy_in(table, [(1, "x")], columns=["id", "v"])


async def _copy_out(pg: PostgresConnector, table: str) -> Any:
    return [chunk async for chunk in pg.copy_out(table)]


# name: (table DDL, upsert_copy_threshold, the call)
BULK: dict[str, tuple[str, int, Callable[[PostgresConnector, str], Awaitable[Any]]]] = {
    "write-insert": ("(id int, v text)", 1000, _write),
    "write-upsert": ("(id int PRIMARY KEY, v text)", 1000, _write),
    "write-staged-upsert": ("(id int PRIMARY KEY, v text)", 1, _write),
    "copy_in": ("(id int, v text)", 1000, _copy_in),
    "copy_out": ("(id int, v text)", 1000, _copy_out),
}


@pytest.mark.parametrize("name", list(BULK))
async def test_bulk_calls_have_a_deadline_by_default(
    postgres_proxy_url: str, toxiproxy: ToxiproxyClient, config_for: Any, name: str
) -> None:
    ddl, threshold, call = BULK[name]
    table = f"deadline_{name.replace('-', '_')}"
    # bulk_timeout is left at its default: the deadline is scaled from timeout.
    config = config_for(
        postgres_proxy_url,
        timeout=1.0,
        connect_timeout=2.0,
        upsert_copy_threshold=threshold,
        retry={"max_attempts": 1},
    )
    assert config.bulk_timeout is None
    async with PostgresConnector(config) as pg:
        await pg.execute(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} {ddl}")
        await call(pg, table)  # the catalog look-up is cached: only the bulk call is left
        with toxiproxy.toxic("postgres", "timeout", timeout=0):
            async with asyncio.timeout(GUARD):
                with pytest.raises(ConnectorTimeoutError) as caught:
                    await call(pg, table)
        assert "timed out after" in caught.value.message
        assert await pg.query_value("SELECT 1") == 1


async def test_a_connection_given_back_over_a_dead_link_is_not_waited_for(
    postgres_proxy_url: str, toxiproxy: ToxiproxyClient, config_for: Any
) -> None:
    # The pool resets a connection with a round trip when it is given back; after a
    # transaction that happens outside any operation's deadline. Here the link goes
    # silent while COMMIT runs (a deferred trigger makes it last 2 s), so COMMIT's answer
    # still arrives but the reset would never be answered.
    table = f"slow_commit_{uuid.uuid4().hex[:8]}"
    config = config_for(postgres_proxy_url, connect_timeout=2.0, timeout=20.0)
    async with PostgresConnector(config) as pg:
        await pg.execute(
            f"CREATE TABLE {table} (id int);"
            f"CREATE FUNCTION {table}_f() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;"
            f"CREATE CONSTRAINT TRIGGER {table}_t AFTER INSERT ON {table} "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {table}_f()"
        )
        toxic = f"upstream_hole_{uuid.uuid4().hex[:8]}"

        async def cut_the_link_during_commit() -> None:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(
                toxiproxy.add_toxic, "postgres", "timeout", stream="upstream", name=toxic, timeout=0
            )

        cutter: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(GUARD):
                async with pg.transaction() as tx:
                    await tx.execute(f"INSERT INTO {table} VALUES (1)")
                    cutter = asyncio.create_task(cut_the_link_during_commit())
                await cutter
        finally:
            if cutter is not None:
                await asyncio.gather(cutter, return_exceptions=True)
            await asyncio.to_thread(toxiproxy.remove_toxic, "postgres", toxic)
        assert await pg.query_value(f"SELECT count(*) FROM {table}") == 1  # it committed


async def test_a_listener_on_a_silent_link_gives_up_after_its_reconnect_timeout(
    postgres_proxy_url: str, toxiproxy: ToxiproxyClient, config_for: Any
) -> None:
    config = config_for(postgres_proxy_url, connect_timeout=1.0, timeout=5.0)
    async with PostgresConnector(config) as pg:
        async with pg.listen("silent_link", keepalive=0.5, reconnect_timeout=2.0) as listener:
            with toxiproxy.toxic("postgres", "timeout", timeout=0):
                async with asyncio.timeout(GUARD):
                    with pytest.raises(ConnectionFailedError) as caught:
                        await anext(listener)
        assert "connect_timeout" in caught.value.message


def _server_sockets(port: int) -> set[int]:
    """File descriptors of this process's TCP connections to ``port``."""
    return {
        c.fd
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    }


def _keepalive_options(fd: int) -> dict[str, int]:
    sock = socket.socket(fileno=os.dup(fd))
    try:
        options = {"SO_KEEPALIVE": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)}
        for name in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT"):
            options[name] = sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, name))
        return options
    finally:
        sock.close()


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux socket options")
async def test_pooled_and_listening_connections_probe_a_silent_peer_by_default(
    postgres_database_url: str, config_for: Any
) -> None:
    port = urlsplit(postgres_database_url).port
    assert port is not None
    before = _server_sockets(port)
    config = config_for(postgres_database_url, pool_min=2, pool_max=2)
    assert config.tcp_keepalive == 60.0  # the default
    async with PostgresConnector(config) as pg, pg.listen("probing"):
        ours = _server_sockets(port) - before
        assert len(ours) == 3  # two pooled connections and the listener's
        for fd in ours:
            assert _keepalive_options(fd) == {
                "SO_KEEPALIVE": 1,
                "TCP_KEEPIDLE": 30,
                "TCP_KEEPINTVL": 10,
                "TCP_KEEPCNT": 3,
                "TCP_USER_TIMEOUT": 60_000,
            }
    # Turned off, the OS defaults stay (no keepalive at all on Linux).
    off = config_for(postgres_database_url, pool_min=1, pool_max=1, tcp_keepalive=None)
    before = _server_sockets(port)
    async with PostgresConnector(off):
        (fd,) = _server_sockets(port) - before
        assert _keepalive_options(fd)["SO_KEEPALIVE"] == 0


def test_listener_waits_must_be_finite() -> None:
    pg = PostgresConnector(PostgresConfig())
    for bad in ({"keepalive": math.inf}, {"keepalive": 0}, {"reconnect_timeout": math.nan}):
        with pytest.raises(InvalidRequestError):
            pg.listen("jobs", **bad)


def test_the_bulk_deadline_scales_from_timeout() -> None:
    config = PostgresConfig(timeout=30)
    assert config.bulk_deadline(1) == pytest.approx(30.001)
    assert config.bulk_deadline(1_000_000) == pytest.approx(1030)
    assert config.bulk_deadline(None) == 300  # size not known up front
    assert PostgresConfig(timeout=30, bulk_timeout=5).bulk_deadline(10**9) == 5
    assert PostgresConfig(timeout=None).bulk_deadline(1) is None
