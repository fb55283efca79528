"""AdvisoryLeases on the real server: one session holds a lease at a time (as pg_locks
shows), the server frees a lease with its session (closed, terminated, idle too long),
a lost session is an error and stops a SyncWorker's run in progress; workers starting
at once create their shared state table once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from connector_core import ConnectionFailedError, InvalidRequestError
from connector_core.sync import StreamLeases, StreamSync, SyncWorker
from connector_postgres import AdvisoryLeases, PostgresConnector, PostgresStateStore, lease_key

pytestmark = pytest.mark.integration


@pytest.fixture
def group() -> str:
    return f"leases-{uuid.uuid4().hex[:8]}"


async def holders(pg: PostgresConnector, key: int) -> list[int]:
    """The pids holding advisory lock ``key`` (a bigint lock: classid, objid, 1)."""
    rows = await pg.query(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1",
        (key >> 32) & 0xFFFFFFFF,
        key & 0xFFFFFFFF,
    )
    return [row["pid"] for row in rows]


async def eventually_free(pg: PostgresConnector, key: int, within: float = 30.0) -> None:
    for _ in range(int(within / 0.1)):
        if not await holders(pg, key):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"lock {key} still held after {within}s")


def test_keys_are_stable_across_versions_and_machines() -> None:
    # Workers of two releases must compute the same keys, or both would run a stream.
    assert lease_key("orders-sync", "public.orders->orders") == -4680093500994201834
    assert lease_key("a", "bc") != lease_key("ab", "c")


async def test_one_session_holds_a_lease_at_a_time(pg: PostgresConnector, group: str) -> None:
    async with pg.leases(group) as first, pg.leases(group) as second:
        assert isinstance(first, StreamLeases)
        assert await first.try_acquire("s1") is True
        assert await first.try_acquire("s1") is True  # held already: not locked twice
        assert await second.try_acquire("s1") is False
        assert await second.try_acquire("s2") is True
        assert await holders(pg, first.key("s1")) == [first.backend_pid]
        assert await holders(pg, first.key("s2")) == [second.backend_pid]
        await first.release("s1")
        assert await holders(pg, first.key("s1")) == []
        assert await second.try_acquire("s1") is True
        assert second.held == {"s1", "s2"}
        assert first.held == set()
        await first.release("never-held")  # nothing to give back
    assert await holders(pg, first.key("s1")) == []  # closing released them all
    assert await holders(pg, first.key("s2")) == []


async def test_groups_do_not_share_leases(pg: PostgresConnector, group: str) -> None:
    async with pg.leases(group) as mine, pg.leases(f"{group}-other") as theirs:
        assert await mine.try_acquire("s1")
        assert await theirs.try_acquire("s1")


async def test_a_terminated_session_loses_its_leases_and_says_so(
    pg: PostgresConnector, group: str
) -> None:
    async with pg.leases(group) as leases, pg.leases(group) as other:
        assert await leases.try_acquire("s1")
        await pg.execute("SELECT pg_terminate_backend($1)", leases.backend_pid)
        await eventually_free(pg, leases.key("s1"))
        assert await other.try_acquire("s1")
        with pytest.raises(ConnectionFailedError):
            await leases.check()
        assert leases.held == set()
        with pytest.raises(ConnectionFailedError, match="lost"):
            await leases.try_acquire("s2")  # never on a new session behind the caller's back


async def test_an_idle_session_is_dropped_by_the_server(pg: PostgresConnector, group: str) -> None:
    # No check() for longer than the timeout (a frozen worker): the server ends the session
    # (idle_session_timeout), so its leases go to others.
    async with pg.leases(group, timeout=3) as leases, pg.leases(group) as other:
        assert await leases.try_acquire("s1")
        await eventually_free(pg, leases.key("s1"))
        assert await other.try_acquire("s1")
        with pytest.raises(ConnectionFailedError):
            await leases.check()


def test_bad_arguments_are_refused(pg: PostgresConnector) -> None:
    with pytest.raises(InvalidRequestError, match="group"):
        pg.leases("")
    for timeout in (0, 2.9, float("inf"), float("nan")):
        with pytest.raises(InvalidRequestError, match="timeout"):
            pg.leases("g", timeout=timeout)
    assert "g" in repr(pg.leases("g"))
    assert pg.leases("g").heartbeat == 10.0


class HangingSink:
    """A Writable whose writes never end (until cancelled)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cancelled = False

    async def write(self, stream: str, records: Any) -> Any:
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_a_worker_whose_lease_session_ends_stops_its_run(
    pg: PostgresConnector, group: str
) -> None:
    schema = pg.config.schemas[0] if pg.config.schemas else "public"
    table = f"items_{uuid.uuid4().hex[:8]}"
    await pg.execute(f'CREATE TABLE "{schema}".{table} (id bigint PRIMARY KEY)')
    await pg.execute(f'INSERT INTO "{schema}".{table} SELECT generate_series(1, 10)')
    state = PostgresStateStore(pg, table=f"state_{table}")
    sink = HangingSink()
    leases: AdvisoryLeases
    async with pg.leases(group, timeout=3) as leases:
        sync = StreamSync(pg, f"{schema}.{table}", sink, state=state, target="out")
        worker = SyncWorker([sync], leases, poll=0.1)
        task = asyncio.ensure_future(worker.run())
        await sink.entered.wait()
        assert leases.held == {sync.name}
        await pg.execute("SELECT pg_terminate_backend($1)", leases.backend_pid)
        with pytest.raises(ConnectionFailedError):
            await task
    assert sink.cancelled
    assert worker.runs == 0
    assert await state.get(f"{sync.name}:round") is None  # not marked: another runs it


async def test_workers_starting_at_once_create_the_state_table_once(
    pg: PostgresConnector, postgres_database_url: str
) -> None:
    # Concurrent CREATE TABLE IF NOT EXISTS of one name fails on pg_type's unique index
    # (seen 24 times in 40 set-ups before setup() took an advisory lock).
    others = [PostgresConnector.from_url(postgres_database_url) for _ in range(3)]
    for other in others:
        await other.connect()
    try:
        for _ in range(5):
            table = f"state_{uuid.uuid4().hex[:8]}"
            stores = [PostgresStateStore(c, table=table) for c in (pg, *others)]
            await asyncio.gather(*(store.setup() for store in stores))
            assert await pg.query_value(f'SELECT count(*) FROM "{table}"') == 0
    finally:
        for other in others:
            await other.disconnect()
