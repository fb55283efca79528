"""Dead connections, a server restart, a slow network and LISTEN across reconnects."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from connector_core import (
    CircuitOpenError,
    ConnectionFailedError,
    ConnectorTimeoutError,
    LifecycleEvent,
)
from connector_postgres import Notification, PostgresConnector
from connector_testing import ToxiproxyClient, skip_or_fail

pytestmark = pytest.mark.integration

PG_BIN = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))


def _repo_root() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "scripts" / "services").is_file():
            return folder
    return Path.cwd()


def _services_data_dir() -> Path | None:
    data = (_repo_root() / ".cache" / "services" / "run" / "postgres").resolve() / "data"
    return data if (data / "postmaster.pid").is_file() else None


def _pg_ctl(data: Path, *args: str) -> tuple[int, str]:
    """Run pg_ctl (as the postgres user when we are root); returns its exit code and
    output. The server it starts logs to the services' log file, never to our pipes
    (a pipe the postmaster inherited would keep this call waiting for ever)."""
    command = [str(PG_BIN / "pg_ctl"), "-D", str(data), *args]
    if args[0] in ("start", "restart"):
        command += ["-l", str(data.parent / "postgres.log")]
    if os.geteuid() == 0:  # the server refuses to run as root
        command = ["runuser", "-u", "postgres", "--", *command]
    with tempfile.TemporaryFile() as output:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
            start_new_session=True,
            cwd="/",
        )
        output.seek(0)
        return done.returncode, output.read().decode(errors="replace")


@pytest.fixture
def restartable_server(postgres_url: str) -> Iterator[Path]:
    """The data directory of the PostgreSQL that ``scripts/services`` runs; the server
    is running again when the test ends, whatever happened."""
    data = _services_data_dir()
    if (
        data is None
        or not (PG_BIN / "pg_ctl").exists()
        or (os.geteuid() == 0 and shutil.which("runuser") is None)
    ):
        skip_or_fail(
            "the restart test needs the PostgreSQL of scripts/services (pg_ctl, data dir): "
            "run `make services`"
        )
    try:
        yield data
    finally:
        if _pg_ctl(data, "status")[0] != 0:
            code, output = _pg_ctl(data, "start", "-w", "-t", "60")
            # Other suites share this server: say so loudly if it could not come back.
            assert code == 0, f"could not start the shared PostgreSQL again: {output}"


async def _admin_fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        rows: list[asyncpg.Record] = await connection.fetch(sql, *args)
        return rows
    finally:
        await connection.close()


async def test_every_pooled_connection_terminated_then_next_call_succeeds(
    postgres_database_url: str, config_for: Any
) -> None:
    app = f"terminate-{uuid.uuid4().hex[:8]}"
    config = config_for(postgres_database_url, pool_min=4, pool_max=4, application_name=app)
    reconnects: list[LifecycleEvent] = []
    async with PostgresConnector(config) as pg:
        pg.on(LifecycleEvent.RECONNECT, lambda info: reconnects.append(info.event))
        await asyncio.gather(*(pg.query("SELECT pg_sleep(0.05)") for _ in range(4)))
        before = {r["pid"] for r in await _admin_fetch(postgres_database_url, _PIDS, app)}
        assert len(before) == 4
        killed = await _admin_fetch(
            postgres_database_url, f"SELECT pg_terminate_backend(pid) FROM ({_PIDS}) p", app
        )
        assert [r[0] for r in killed] == [True] * 4
        # Every call below is the first on a dead connection; none needs a reconnect.
        assert await pg.query_value("SELECT 41 + 1") == 42
        assert await pg.ping() > 0
        results = await asyncio.gather(*(pg.query_value("SELECT 1") for _ in range(8)))
        assert results == [1] * 8
        after = {r["pid"] for r in await _admin_fetch(postgres_database_url, _PIDS, app)}
        assert after
        assert not after & before
        assert pg.is_connected
    assert reconnects == []  # the pool healed itself; the connector never rebuilt it


_PIDS = "SELECT pid FROM pg_stat_activity WHERE application_name = $1"


async def test_pool_recovers_after_a_server_restart(
    postgres_database_url: str, config_for: Any, restartable_server: Path
) -> None:
    config = config_for(
        postgres_database_url,
        pool_min=2,
        retry={"max_attempts": 30, "initial_delay": 0.1, "max_delay": 1.0, "deadline": 60},
    )
    async with PostgresConnector(config) as pg:
        await pg.execute("CREATE TABLE restart_t (id int)")
        await pg.execute("INSERT INTO restart_t VALUES (1)")
        started_before = await pg.query_value("SELECT pg_postmaster_start_time()")
        code, output = await asyncio.to_thread(
            _pg_ctl, restartable_server, "restart", "-m", "fast", "-w", "-t", "60"
        )
        assert code == 0, output
        assert await pg.query_value("SELECT count(*) FROM restart_t") == 1
        assert await pg.query_value("SELECT pg_postmaster_start_time()") > started_before
        assert await pg.ping() > 0
        assert (await pg.execute("INSERT INTO restart_t VALUES (2)")).rowcount == 1


async def test_calls_ride_out_a_network_outage(
    postgres_proxy_url: str, toxiproxy: ToxiproxyClient, config_for: Any
) -> None:
    config = config_for(
        postgres_proxy_url,
        connect_timeout=2,
        retry={"max_attempts": 50, "initial_delay": 0.1, "max_delay": 0.5, "deadline": 30},
        circuit_breaker=None,  # let the retries run into the outage rather than fail fast
    )
    async with PostgresConnector(config) as pg:
        assert await pg.query_value("SELECT 1") == 1
        await asyncio.to_thread(toxiproxy.set_enabled, "postgres", False)
        try:
            outage = asyncio.create_task(pg.query_value("SELECT 2"))
            await asyncio.sleep(1.5)
            assert not outage.done()
        finally:
            await asyncio.to_thread(toxiproxy.set_enabled, "postgres", True)
        assert await asyncio.wait_for(outage, 30) == 2
        assert pg.stats.operations["query_value"].retries >= 1


async def test_latency_beyond_command_timeout_is_a_final_timeout_naming_it(
    postgres_proxy_url: str, toxiproxy: ToxiproxyClient, config_for: Any
) -> None:
    # A 4 s latency against a 1 s command_timeout and a 60 s operation timeout: only
    # command_timeout can have ended the call, as its typed error says.
    config = config_for(postgres_proxy_url, command_timeout=1.0, connect_timeout=3)
    async with PostgresConnector(config) as pg:
        assert await pg.query_value("SELECT 1") == 1
        with (
            toxiproxy.toxic("postgres", "latency", latency=4000),
            pytest.raises(ConnectorTimeoutError) as caught,
        ):
            await pg.query_value("SELECT 1")
        assert "command_timeout=1.0s" in str(caught.value)
        assert not caught.value.transient  # the caller's budget: not multiplied by retries
        assert pg.stats.operations["query_value"].retries == 0
        # The connection cut short is given back in the background; the next call works.
        assert await pg.query_value("SELECT 2") == 2


async def test_listen_delivers_notifications_and_survives_a_lost_connection(
    pg: PostgresConnector, postgres_database_url: str
) -> None:
    channel = f"jobs {uuid.uuid4().hex[:6]}"  # a space: the name must be quoted
    async with pg.listen(channel, keepalive=1.0) as listener:
        await pg.notify(channel, "first")
        first = await asyncio.wait_for(anext(listener), 10)
        assert first == Notification(channel=channel, payload="first", pid=first.pid)
        pid = listener.backend_pid
        assert pid is not None
        # Only this listener's backend, in this test's database: nothing else on the
        # shared server is touched.
        killed = await _admin_fetch(
            postgres_database_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid = $1 AND datname = current_database()",
            pid,
        )
        assert [r[0] for r in killed] == [True]
        received: Notification | None = None
        deadline = time.monotonic() + 20
        while received is None and time.monotonic() < deadline:
            # Notifications sent while the listener was away are lost (LISTEN semantics),
            # so keep sending until it is back.
            await pg.notify(channel, "after")
            try:
                received = await asyncio.wait_for(anext(listener), 0.5)
            except TimeoutError:
                continue
        assert received is not None
        assert received.payload == "after"
        assert listener.reconnects >= 1
        assert listener.backend_pid not in (None, pid)


async def test_a_listener_reconnects_on_the_road_with_retry_events_and_stats(
    postgres_proxy_url: str, toxiproxy: ToxiproxyClient, config_for: Any
) -> None:
    channel = f"road_{uuid.uuid4().hex[:8]}"
    config = config_for(
        postgres_proxy_url,
        connect_timeout=2.0,
        retry={"max_attempts": 1},  # the connector's own policy retries nothing
        # Every failed reconnect counts toward the breaker; once open it ends the
        # listener's reconnect (decision 0062). Here only the reconnect policy is tested.
        circuit_breaker=None,
    )
    async with PostgresConnector(config) as pg:
        retries: list[Any] = []
        pg.on(LifecycleEvent.RETRY, lambda info: retries.append(info))
        async with pg.listen(channel, keepalive=0.5, reconnect_timeout=30) as listener:
            waiting = asyncio.create_task(anext(listener))
            await asyncio.to_thread(toxiproxy.set_enabled, "postgres", False)
            try:
                for _ in range(200):  # reconnects are refused until the proxy is back
                    if any(r.operation == "listen" for r in retries):
                        break
                    await asyncio.sleep(0.05)
            finally:
                await asyncio.to_thread(toxiproxy.set_enabled, "postgres", True)
            for _ in range(40):  # LISTEN is back at some point: notify until it hears
                await pg.notify(channel, "back")
                done, _ = await asyncio.wait({waiting}, timeout=0.5)
                if done:
                    break
            assert (await asyncio.wait_for(waiting, 10)).payload == "back"
        assert listener.reconnects == 1
        reopened = [r for r in retries if r.operation == "listen"]
        assert reopened, "the listener's reconnect attempts were not retries on the road"
        assert all(isinstance(r.error, ConnectionFailedError) for r in reopened)
        assert pg.stats.operations["listen"].retries == len(reopened)


async def test_a_listener_outlasts_an_outage_that_opens_the_circuit(
    postgres_proxy_url: str, postgres_url: str, toxiproxy: ToxiproxyClient, config_for: Any
) -> None:
    channel = f"outage_{uuid.uuid4().hex[:8]}"
    config = config_for(
        postgres_proxy_url,
        connect_timeout=2.0,
        retry={"max_attempts": 1},
        circuit_breaker={"failure_threshold": 2, "cooldown": 1.0},
    )
    async with (
        PostgresConnector(config) as pg,
        PostgresConnector(config_for(postgres_url)) as sender,  # not through the proxy
    ):
        opened: list[Any] = []
        pg.on(
            LifecycleEvent.RETRY,
            lambda info: opened.append(info) if isinstance(info.error, CircuitOpenError) else None,
        )
        async with pg.listen(channel, keepalive=0.5, reconnect_timeout=30) as listener:
            waiting = asyncio.create_task(anext(listener))
            await asyncio.to_thread(toxiproxy.set_enabled, "postgres", False)
            try:
                for _ in range(300):  # until failed reconnects have opened the circuit
                    if opened:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await asyncio.to_thread(toxiproxy.set_enabled, "postgres", True)
            assert opened, "the outage never opened the circuit: the test proves nothing"
            for _ in range(60):  # the listener waits out the cooldown, then LISTENs again
                await sender.notify(channel, "after the outage")
                done, _ = await asyncio.wait({waiting}, timeout=0.5)
                if done:
                    break
            assert (await asyncio.wait_for(waiting, 10)).payload == "after the outage"
        assert listener.reconnects == 1


async def test_disconnect_closes_open_listeners(
    postgres_database_url: str, config_for: Any
) -> None:
    app = f"listen-close-{uuid.uuid4().hex[:8]}"
    pg = PostgresConnector(config_for(postgres_database_url, application_name=app, pool_min=0))
    await pg.connect()
    listener = pg.listen("closing")
    await listener.start()
    pid = listener.backend_pid
    assert pid is not None
    assert pid in [r["pid"] for r in await _admin_fetch(postgres_database_url, _PIDS, app)]
    waiting = asyncio.create_task(anext(listener, None))
    await asyncio.sleep(0.1)
    await pg.disconnect()
    assert await asyncio.wait_for(waiting, 10) is None  # the iteration ended
    assert listener.backend_pid is None
    for _ in range(100):  # the server notices the closed connection shortly
        if not await _admin_fetch(postgres_database_url, _PIDS, app):
            break
        await asyncio.sleep(0.05)
    assert await _admin_fetch(postgres_database_url, _PIDS, app) == []


async def test_a_ping_on_a_dead_pooled_connection_is_retried_on_the_road(
    postgres_database_url: str, config_for: Any, terminate_unnoticed: Any
) -> None:
    app = f"ping-kill-{uuid.uuid4().hex[:8]}"
    config = config_for(postgres_database_url, pool_min=1, pool_max=1, application_name=app)
    async with PostgresConnector(config) as pg:
        retries: list[Any] = []
        pg.on(LifecycleEvent.RETRY, lambda info: retries.append(info))
        assert await pg.ping() > 0
        assert terminate_unnoticed(postgres_database_url, app) == 1
        assert await pg.ping() > 0  # the server is healthy: the ping says so
        [retry] = retries
        assert (retry.operation, retry.attempt) == ("ping", 1)
        assert isinstance(retry.error, ConnectionFailedError)
        ping = pg.stats.operations["ping"]
        assert (ping.calls, ping.retries, ping.failures, ping.successes) == (2, 1, 1, 2)


@pytest.mark.parametrize("size", [10, 2_000], ids=["pipelined", "copy-staged"])
async def test_an_upsert_on_killed_pooled_connections_is_retried_and_succeeds(
    postgres_database_url: str, config_for: Any, terminate_unnoticed: Any, size: int
) -> None:
    app = f"upsert-kill-{uuid.uuid4().hex[:8]}"
    table = f"kill_upsert_{size}"
    config = config_for(postgres_database_url, pool_min=2, pool_max=2, application_name=app)
    async with PostgresConnector(config) as pg:
        await pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
        await pg.write(table, [{"id": 0, "v": "warm the catalog cache"}])
        await asyncio.gather(*(pg.query("SELECT pg_sleep(0.05)") for _ in range(2)))
        assert terminate_unnoticed(postgres_database_url, app) == 2
        records = [{"id": i, "v": f"v{i}"} for i in range(size)]
        result = await pg.write(table, records)
        assert result.ok
        assert result.written == size
        assert pg.stats.operations["write.upsert"].retries >= 1
        assert await pg.query_value(f"SELECT count(*) FROM {table}") == size
        assert await pg.query_value(f"SELECT v FROM {table} WHERE id = 0") == "v0"


@pytest.mark.parametrize(("scan", "retried"), [("cursor", "transaction.begin"), ("keyset", "read")])
async def test_a_read_on_killed_pooled_connections_is_retried_and_correct(
    postgres_database_url: str, config_for: Any, terminate_unnoticed: Any, scan: str, retried: str
) -> None:
    app = f"read-kill-{uuid.uuid4().hex[:8]}"
    config = config_for(postgres_database_url, pool_min=2, pool_max=2, application_name=app)
    async with PostgresConnector(config) as pg:
        await pg.execute(
            f"CREATE TABLE kill_read_{scan} (id int PRIMARY KEY, at timestamptz NOT NULL);"
            f"INSERT INTO kill_read_{scan} SELECT g, now() FROM generate_series(1, 50) g"
        )
        assert len([r async for r in pg.read(f"kill_read_{scan}", limit=1)]) == 1  # warm up
        await asyncio.gather(*(pg.query("SELECT pg_sleep(0.05)") for _ in range(2)))
        assert terminate_unnoticed(postgres_database_url, app) == 2
        reader = pg.read(f"kill_read_{scan}", cursor_field="at", batch_size=20, scan=scan)  # type: ignore[arg-type]
        records = [r async for r in reader]
        assert [r["id"] for r in records] == list(range(1, 51))
        # The cursor's transaction begins on the dead connection; a keyset page meets it.
        assert pg.stats.operations[retried].retries >= 1


async def test_a_cursor_read_whose_connection_dies_midway_goes_on_from_its_checkpoint(
    postgres_database_url: str, config_for: Any, terminate_unnoticed: Any
) -> None:
    app = f"read-midway-{uuid.uuid4().hex[:8]}"
    config = config_for(postgres_database_url, pool_min=1, pool_max=1, application_name=app)
    async with PostgresConnector(config) as pg:
        await pg.execute(
            "CREATE TABLE midway_read (id int PRIMARY KEY, at int NOT NULL);"
            "INSERT INTO midway_read SELECT g, g % 3 FROM generate_series(1, 300) g"
        )
        reader = pg.read("midway_read", cursor_field="at", batch_size=40)
        seen = [(await anext(reader))["id"] for _ in range(50)]  # 2 fetches made
        assert terminate_unnoticed(postgres_database_url, app) == 1
        seen += [r["id"] async for r in reader]
        assert len(seen) == len(set(seen)) == 300
        assert seen == sorted(range(1, 301), key=lambda i: (i % 3, i))
        assert pg.stats.operations["read.open"].calls == 2  # opened again, once

        # Inside the caller's transaction nothing is opened again: the error is theirs.
        async def read_in_a_transaction() -> None:
            async with pg.transaction():
                inside = pg.read("midway_read", cursor_field="at", batch_size=40)
                [await anext(inside) for _ in range(50)]
                assert terminate_unnoticed(postgres_database_url, app) == 1
                [r async for r in inside]

        with pytest.raises(ConnectionFailedError):
            await read_in_a_transaction()


async def test_an_insert_on_a_killed_pooled_connection_is_not_retried(
    postgres_database_url: str, config_for: Any, terminate_unnoticed: Any
) -> None:
    app = f"insert-kill-{uuid.uuid4().hex[:8]}"
    config = config_for(postgres_database_url, pool_min=2, pool_max=2, application_name=app)
    async with PostgresConnector(config) as pg:
        await pg.execute("CREATE TABLE kill_insert (id int, v text)")  # no key: duplicates
        await pg.write("kill_insert", [{"id": 0, "v": "warm the catalog cache"}])
        await asyncio.gather(*(pg.query("SELECT pg_sleep(0.05)") for _ in range(2)))
        assert terminate_unnoticed(postgres_database_url, app) == 2
        with pytest.raises(ConnectionFailedError) as caught:
            await pg.write("kill_insert", [{"id": i, "v": "x"} for i in range(100)])
        assert caught.value.transient  # the caller may decide to run it again
        assert pg.stats.operations["write.insert"].retries == 0
        # Here the connection died before the COPY began, so nothing was written; in
        # general the caller cannot know, which is why inserts are not retried.
        assert await pg.query_value("SELECT count(*) FROM kill_insert") == 1
        assert (await pg.write("kill_insert", [{"id": 1, "v": "y"}])).written == 1
