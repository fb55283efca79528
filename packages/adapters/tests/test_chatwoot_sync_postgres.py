"""End to end: fake Chatwoot (contract-checked) -> sync_contacts -> real PostgreSQL,
into a table the sync makes from CONTACTS_STREAM."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest
from adapters_chatwoot_fake import FakeChatwoot, managed_config

from connector_adapters import InMemoryEventPublisher, SyncProgress
from connector_adapters.chatwoot import (
    CONTACTS_STREAM,
    ManagedChatwoot,
    contacts_table_ddl,
    sync_contacts,
)
from connector_adapters.postgres_state import PostgresStateStore
from connector_core import ErrorCode, SerializationError
from connector_postgres import PostgresConnector, create_table_sql

pytestmark = pytest.mark.integration

N = 1000


async def _rows(pg: PostgresConnector, table: str) -> tuple[int, int]:
    row = await pg.query_one(
        f'SELECT count(*) AS n, count(DISTINCT chatwoot_id) AS d FROM "{table}"'
    )
    assert row is not None
    return row["n"], row["d"]


async def test_sync_1000_contacts_then_exactly_the_10_changed(
    fake_chatwoot: FakeChatwoot, pg: PostgresConnector, table: str
) -> None:
    ids = fake_chatwoot.backend.seed_contacts(N)
    state = PostgresStateStore(pg, namespace=table)
    publisher = InMemoryEventPublisher()
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        first = await sync_contacts(
            client, pg, publisher=publisher, state=state, table=table, account_id=1,
            correlation_id="run-1",
        )  # fmt: skip
        assert first.completed
        assert (first.seen, first.created, first.updated, first.written) == (N, N, 0, N)
        assert await _rows(pg, table) == (N, N)
        created = publisher.of_type("contact.created")
        assert sorted(int(e.entity_id) for e in created) == ids
        assert {e.correlation_id for e in created} == {"run-1"}
        assert created[0].payload["sources"][0]["system"] == "chatwoot"
        assert all(r.headers["x-correlation-id"] == "run-1"
                   for r in fake_chatwoot.api_requests("/contacts"))  # fmt: skip
        first_synced = await pg.query_value(f'SELECT max(synced_at) FROM "{table}"')

        changed = ids[100:1000:90]
        assert len(changed) == 10
        for cid in changed:
            await fake_chatwoot.backend.update_contact(
                cid, name=f"renamed {cid}", custom_attributes={"tier": "gold"}
            )
        publisher.clear()
        second = await sync_contacts(
            client, pg, publisher=publisher, state=state, table=table, account_id=1
        )

    assert (second.seen, second.created, second.updated, second.written) == (N, 0, 10, 10)
    assert await _rows(pg, table) == (N, N)
    assert [e.type for e in publisher.events] == ["contact.updated"] * 10
    assert sorted(int(e.entity_id) for e in publisher.events) == changed
    updated_rows = await pg.query(
        f'SELECT chatwoot_id, name, custom_attributes FROM "{table}" '
        "WHERE synced_at > $1 ORDER BY chatwoot_id",
        first_synced,
    )
    assert [r["chatwoot_id"] for r in updated_rows] == changed
    assert all(r["name"] == f"renamed {r['chatwoot_id']}" for r in updated_rows)
    assert all(r["custom_attributes"] == {"tier": "gold"} for r in updated_rows)


async def test_cancelled_sync_resumes_without_loss_or_duplicates(
    fake_chatwoot: FakeChatwoot, pg: PostgresConnector, table: str
) -> None:
    ids = fake_chatwoot.backend.seed_contacts(N)
    state = PostgresStateStore(pg, namespace=table)
    publisher = InMemoryEventPublisher()
    reached = asyncio.Event()

    async def hold(p: SyncProgress) -> None:
        if p.batches == 20:
            reached.set()
            await asyncio.sleep(3600)  # stopped here (page 20 committed) until cancelled

    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        task = asyncio.create_task(
            sync_contacts(
                client, pg, publisher=publisher, state=state, table=table, name="resume",
                on_progress=hold,
            )
        )  # fmt: skip
        await reached.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        partial, _ = await _rows(pg, table)
        assert partial == 20 * 15, "the sync was stopped mid-run"
        checkpoint = await state.get("resume:checkpoint")
        assert checkpoint is not None
        assert checkpoint["position"] == {"page": 21}

        # While the sync is stopped, the listing shifts under its page checkpoint: 30
        # contacts before the resume point are deleted and 20 created there (net -10: ten
        # not yet synced contacts move from page 21 back to page 20), and 20 contacts without
        # an email (the sort has no tie-breaker for them) are added.
        backend = fake_chatwoot.backend
        for cid in ids[:30]:
            await backend.delete_contact(cid)
        early = [(await backend.create_contact(inbox_id=1, email=f"aaa{i:02d}@example.com")).id
                 for i in range(20)]  # fmt: skip
        no_email = [(await backend.create_contact(inbox_id=1, name=f"no email {i}")).id
                    for i in range(20)]  # fmt: skip
        resumed = await sync_contacts(
            client, pg, publisher=publisher, state=state, table=table, name="resume"
        )

    assert resumed.resumed_from == {"page": 21}
    assert resumed.completed
    assert resumed.unseen == 0
    assert resumed.failed == 0
    every = set(ids) | set(early) | set(no_email)
    total, distinct = await _rows(pg, table)
    assert total == distinct == len(every)  # every contact exactly once (deleted ones stay)
    stored = {r["chatwoot_id"] for r in await pg.query(f'SELECT chatwoot_id FROM "{table}"')}
    assert stored == every
    assert set(backend.contacts) <= stored  # nothing in Chatwoot was lost
    created = Counter(int(e.entity_id) for e in publisher.of_type("contact.created"))
    assert set(created) == every  # no loss
    assert sum(created.values()) == len(every)  # the cancelled page was committed: no repeats
    assert publisher.of_type("contact.updated") == []


async def test_a_contact_that_cannot_be_published_fails_alone_and_loudly(
    fake_chatwoot: FakeChatwoot,
    pg: PostgresConnector,
    table: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = fake_chatwoot.backend
    ids = backend.seed_contacts(20)
    tree: object = []
    for _ in range(260):  # valid JSON; deeper than pydantic serializes the event payload
        tree = [tree]
    await backend.update_contact(ids[3], custom_attributes={"tree": tree})
    state = PostgresStateStore(pg, namespace=table)
    publisher = InMemoryEventPublisher()
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        with caplog.at_level(logging.WARNING):
            report = await sync_contacts(client, pg, publisher=publisher, state=state, table=table)
        assert (report.completed, report.partial, report.failed) == (False, True, 1)
        (error,) = report.errors
        assert error.code is ErrorCode.SERIALIZATION
        assert f"contact {ids[3]} cannot be published" in error.message
        assert any("could not be mapped" in r.getMessage() for r in caplog.records)
        stored = {r["chatwoot_id"] for r in await pg.query(f'SELECT chatwoot_id FROM "{table}"')}
        assert stored == set(ids) - {ids[3]}  # every other contact went through
        assert len(publisher.events) == 19

        await backend.update_contact(ids[3], custom_attributes={"tree": "pruned"})
        again = await sync_contacts(client, pg, publisher=publisher, state=state, table=table)
    assert (again.completed, again.failed, again.created) == (True, 0, 1)
    assert await _rows(pg, table) == (20, 20)


@pytest.mark.parametrize(
    "checkpoint",
    [{"position": 5}, {"position": {"page": "2"}}, {"position": {"page": 0}}, {"passes": "x"},
     {"position": None, "failed": -1}],
    ids=["position-not-object", "page-text", "page-0", "passes-text", "failed-negative"],
)  # fmt: skip
async def test_a_checkpoint_the_sync_did_not_write_is_a_serialization_error(
    fake_chatwoot: FakeChatwoot, pg: PostgresConnector, table: str, checkpoint: dict[str, Any]
) -> None:
    fake_chatwoot.backend.seed_contacts(3)
    state = PostgresStateStore(pg, namespace=table)
    await state.put("odd:checkpoint", checkpoint)
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        with pytest.raises(SerializationError, match="delete") as info:
            await sync_contacts(client, pg, publisher=InMemoryEventPublisher(), state=state,
                                table=table, name="odd")  # fmt: skip
    assert "checkpoint" in str(info.value)


async def _columns(pg: PostgresConnector, table: str) -> dict[str, str]:
    rows = await pg.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = $1 ORDER BY ordinal_position",
        table,
    )
    return {r["column_name"]: r["data_type"] for r in rows}


async def test_the_sync_makes_its_table_from_the_contacts_stream(
    fake_chatwoot: FakeChatwoot, pg: PostgresConnector, table: str
) -> None:
    fake_chatwoot.backend.seed_contacts(3)
    assert await _columns(pg, table) == {}
    state = PostgresStateStore(pg, namespace=table)
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        report = await sync_contacts(
            client, pg, publisher=InMemoryEventPublisher(), state=state, table=table
        )
    assert (report.completed, report.written) == (True, 3)
    assert await _columns(pg, table) == {
        "chatwoot_id": "bigint", "account_id": "bigint", "name": "text", "email": "text",
        "phone_number": "text", "identifier": "text", "blocked": "boolean",
        "additional_attributes": "jsonb", "custom_attributes": "jsonb",
        "created_at": "timestamp with time zone",
        "last_activity_at": "timestamp with time zone",
        "synced_at": "timestamp with time zone",
    }  # fmt: skip
    assert [f.name for f in CONTACTS_STREAM.fields] == list(await _columns(pg, table))
    key = await pg.query_value(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = $1::regclass",
        table,
    )
    assert key == "chatwoot_id"
    assert contacts_table_ddl(f"public.{table}") == create_table_sql(
        "public", table, CONTACTS_STREAM
    )


async def test_a_table_of_the_earlier_hand_written_ddl_is_used_as_it_is(
    fake_chatwoot: FakeChatwoot, pg: PostgresConnector, table: str
) -> None:
    # What contacts_table_ddl() made before it was generated from CONTACTS_STREAM (0.1.0),
    # less the synced_at column, which the sync adds.
    await pg.execute(
        f'CREATE TABLE "{table}" (chatwoot_id bigint PRIMARY KEY, account_id bigint, '
        "name text, email text, phone_number text, identifier text, "
        "blocked boolean NOT NULL DEFAULT false, "
        "additional_attributes jsonb NOT NULL DEFAULT '{}'::jsonb, "
        "custom_attributes jsonb NOT NULL DEFAULT '{}'::jsonb, "
        "created_at timestamptz, last_activity_at timestamptz)"
    )
    fake_chatwoot.backend.seed_contacts(5)
    state = PostgresStateStore(pg, namespace=table)
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        report = await sync_contacts(
            client, pg, publisher=InMemoryEventPublisher(), state=state, table=table
        )
    assert (report.completed, report.written) == (True, 5)
    assert list(await _columns(pg, table))[-1] == "synced_at"
    assert await _rows(pg, table) == (5, 5)
    assert await pg.query_value(f'SELECT count(*) FROM "{table}" WHERE synced_at IS NULL') == 0
