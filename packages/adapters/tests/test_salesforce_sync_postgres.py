"""End to end: Salesforce (the mock, and the managed client through the fake) ->
sync_sobject -> the real PostgreSQL, events in memory, checkpoints in PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from adapters_salesforce_fake import FakeSalesforce, managed_config

from connector_adapters import (
    InMemoryEventPublisher,
    ProgressCallback,
    SyncProgress,
    SyncReport,
)
from connector_adapters.postgres_state import PostgresStateStore
from connector_adapters.salesforce import (
    ManagedSalesforce,
    MockSalesforce,
    SalesforceClient,
    sobject_table_ddl,
    standard_describes,
    sync_sobject,
)
from connector_postgres import PostgresConnector
from connector_testing import unique_name

pytestmark = pytest.mark.integration

N = 2000
FIELDS = ["Name", "NumberOfEmployees", "External_Id__c"]


class Clock:
    """Salesforce's time in these tests: moved on by the test, minutes at a time."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)


@dataclass
class Env:
    client: SalesforceClient
    backend: MockSalesforce
    clock: Clock
    fake: FakeSalesforce | None


@pytest.fixture(params=["mock", "managed"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    clock = Clock()
    if request.param == "mock":
        mock = MockSalesforce(clock=clock)
        yield Env(mock, mock, clock, None)
        return
    fake: FakeSalesforce = request.getfixturevalue("fake_salesforce")
    fake.backend = MockSalesforce(clock=clock)
    async with ManagedSalesforce(managed_config(fake)) as client:
        yield Env(client, fake.backend, clock, fake)


@pytest.fixture
async def sf_table(pg: PostgresConnector) -> str:
    name = unique_name("sf_accounts")
    account = next(d for d in standard_describes() if d.name == "Account")
    await pg.execute(sobject_table_ddl(account, name, FIELDS))
    return name


def _seed(env: Env) -> list[str]:
    """2,000 accounts, 400 of them sharing each of five SystemModstamps."""
    ids = env.backend.seed(
        "Account",
        [{"Name": f"Acme {i:04d}", "NumberOfEmployees": i, "External_Id__c": f"e{i}"}
         for i in range(N)],
    )  # fmt: skip
    for n, record_id in enumerate(ids):
        stamp = f"2026-01-05T08:00:0{n // 400}.000+0000"
        env.backend.records["Account"][record_id]["SystemModstamp"] = stamp
    return ids


async def _rows(pg: PostgresConnector, table: str) -> tuple[int, int, int]:
    row = await pg.query_one(
        f"SELECT count(*) AS n, count(DISTINCT id) AS d, count(*) FILTER (WHERE is_deleted) "
        f'AS deleted FROM "{table}"'
    )
    assert row is not None
    return row["n"], row["d"], row["deleted"]


@pytest.mark.parametrize("deletes", ["query_all", "get_deleted"])
async def test_2000_records_then_exactly_the_10_changed_and_3_deleted(
    env: Env, pg: PostgresConnector, sf_table: str, deletes: str
) -> None:
    ids = _seed(env)
    state = PostgresStateStore(pg, namespace=sf_table)
    publisher = InMemoryEventPublisher()

    async def run() -> SyncReport:
        return await sync_sobject(
            env.client, pg, "Account", publisher=publisher, state=state, fields=FIELDS,
            table=sf_table, deletes="get_deleted" if deletes == "get_deleted" else "query_all",
            batch_size=300, clock=env.clock, correlation_id="sf-run",
        )  # fmt: skip

    first = await run()
    assert first.completed
    assert (first.seen, first.created, first.updated, first.deleted) == (N, N, 0, 0)
    assert await _rows(pg, sf_table) == (N, N, 0)
    created = publisher.of_type("account.created")
    assert sorted(e.entity_id for e in created) == sorted(ids)
    assert {e.correlation_id for e in created} == {"sf-run"}

    env.clock.advance(5)
    changed, deleted = ids[5:2000:200], [ids[3], ids[1000], ids[1999]]
    for record_id in changed:
        env.backend.update_now("Account", record_id, {"Name": f"renamed {record_id}"})
    for record_id in deleted:
        env.backend.delete_now("Account", record_id)
    env.clock.advance(5)
    publisher.clear()
    second = await run()

    assert second.completed
    assert (second.created, second.updated, second.deleted) == (0, 10, 3)
    if deletes == "query_all":
        assert second.seen == 13  # only what changed was read
    assert sorted(e.entity_id for e in publisher.of_type("account.updated")) == sorted(changed)
    assert sorted(e.entity_id for e in publisher.of_type("account.deleted")) == sorted(deleted)
    assert len(publisher.events) == 13
    assert await _rows(pg, sf_table) == (N, N, 3)
    names = await pg.query(
        f'SELECT id, name FROM "{sf_table}" WHERE name LIKE $1 ORDER BY id', "renamed %"
    )
    assert [r["id"] for r in names] == sorted(changed)
    gone = await pg.query(f'SELECT id, deleted_at FROM "{sf_table}" WHERE is_deleted ORDER BY id')
    assert [r["id"] for r in gone] == sorted(deleted)
    assert all(r["deleted_at"] is not None for r in gone)

    publisher.clear()
    third = await run()
    assert (third.seen, third.written, len(publisher.events)) == (0, 0, 0)


async def test_a_cancelled_run_resumes_with_no_loss_and_no_duplicates(
    env: Env, pg: PostgresConnector, sf_table: str
) -> None:
    ids = _seed(env)
    state = PostgresStateStore(pg, namespace=sf_table)
    publisher = InMemoryEventPublisher()
    reached = asyncio.Event()

    async def hold(progress: SyncProgress) -> None:
        if progress.batches == 3:
            reached.set()
            await asyncio.sleep(3600)  # stopped here (batch 3 committed) until cancelled

    async def run(on_progress: ProgressCallback | None = None) -> SyncReport:
        return await sync_sobject(
            env.client, pg, "Account", publisher=publisher, state=state, fields=FIELDS,
            table=sf_table, batch_size=300, name="resume", clock=env.clock,
            on_progress=on_progress,
        )  # fmt: skip

    task = asyncio.create_task(run(hold))
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _rows(pg, sf_table) == (900, 900, 0)
    checkpoint = await state.get("resume:checkpoint")
    assert checkpoint is not None
    assert checkpoint["position"]["id"] == ids[899]  # mid-way through a shared stamp

    # While it is stopped: one synced record and one not yet synced change.
    env.clock.advance(1)
    env.backend.update_now("Account", ids[10], {"Name": "changed while stopped"})
    env.backend.update_now("Account", ids[1500], {"Name": "changed before its turn"})
    report = await run()

    assert report.completed
    assert report.resumed_from == checkpoint["position"]
    assert await _rows(pg, sf_table) == (N, N, 0)
    created = Counter(e.entity_id for e in publisher.of_type("account.created"))
    assert sorted(created) == sorted(ids)
    assert set(created.values()) == {1}
    assert [e.entity_id for e in publisher.of_type("account.updated")] == [ids[10]]
    names = {r["id"]: r["name"] for r in await pg.query(f'SELECT id, name FROM "{sf_table}"')}
    assert names[ids[10]] == "changed while stopped"
    assert names[ids[1500]] == "changed before its turn"
