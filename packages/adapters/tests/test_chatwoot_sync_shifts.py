"""sync_contacts while other users change Chatwoot between two page requests of a run.

Chatwoot pages contacts by offset: a contact deleted from page 1 while the sync reads
page 2 pulls the first contact of page 2 back onto page 1, where the sync has already
been, so one listing pass never shows it. These tests make the fake Chatwoot server do
exactly that (after page 1 of a run, before page 2) and check, against the real
PostgreSQL, that a run reporting ``completed`` did read every contact present for the
whole run, and that a run which cannot prove it says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest
from adapters_chatwoot_fake import BackendChange, FakeChatwoot, managed_config, served_contact_ids

from connector_adapters import InMemoryEventPublisher, SyncProgress, SyncReport
from connector_adapters.chatwoot import ManagedChatwoot, MockChatwoot, sync_contacts
from connector_adapters.postgres_state import PostgresStateStore
from connector_postgres import PostgresConnector

pytestmark = pytest.mark.integration

N = 30  # two pages of 15 in email order: contact000001@... to contact000030@...


class Run:
    """One table, one state store and one publisher for several sync runs."""

    def __init__(self, fake: FakeChatwoot, pg: PostgresConnector, table: str) -> None:
        self.fake, self.pg, self.table = fake, pg, table
        self.state = PostgresStateStore(pg, namespace=table)
        self.publisher = InMemoryEventPublisher()

    async def sync(self, client: ManagedChatwoot, **kwargs: object) -> SyncReport:
        return await sync_contacts(
            client, self.pg, publisher=self.publisher, state=self.state, table=self.table,
            account_id=1, name="shift", **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip

    async def first_then_rename(self, client: ManagedChatwoot, contact_id: int | None) -> int:
        """A first, complete run; then rename ``contact_id`` (when given) in Chatwoot.
        Returns where the next run's requests start in the fake's record."""
        assert (await self.sync(client)).completed
        if contact_id is not None:
            await self.fake.backend.update_contact(contact_id, name="renamed")
        self.publisher.clear()
        return len(self.fake.requests)

    async def rows(self) -> dict[int, str]:
        rows = await self.pg.query(f'SELECT chatwoot_id, name FROM "{self.table}"')
        return {r["chatwoot_id"]: r["name"] for r in rows}


def delete(contact_id: int) -> BackendChange:
    async def action(backend: MockChatwoot) -> None:
        assert await backend.delete_contact(contact_id)

    return action


def delete_and_create(contact_id: int, email: str) -> BackendChange:
    async def action(backend: MockChatwoot) -> None:
        assert await backend.delete_contact(contact_id)
        await backend.create_contact(inbox_id=1, name="late", email=email)

    return action


@pytest.mark.parametrize("renamed", [False, True], ids=["unchanged", "renamed"])
async def test_a_contact_deleted_mid_run_does_not_hide_the_contact_behind_it(
    fake_chatwoot: FakeChatwoot, pg: PostgresConnector, table: str, renamed: bool
) -> None:
    ids = fake_chatwoot.backend.seed_contacts(N)
    boundary = ids[15]  # first of page 2; moves to page 1 when a page-1 contact goes
    run = Run(fake_chatwoot, pg, table)
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        mark = await run.first_then_rename(client, boundary if renamed else None)
        fake_chatwoot.change_before(delete(ids[2]), query={"page": "2"})
        report = await run.sync(client)

    assert boundary in served_contact_ids(fake_chatwoot.requests[mark:]), "never read"
    assert (report.completed, report.unseen, report.failed) == (True, 0, 0)
    rows = await run.rows()
    assert set(rows) == set(ids)  # the deleted contact's row stays (deletes are not synced)
    assert rows[boundary] == ("renamed" if renamed else f"contact {boundary}")
    updated = [e.entity_id for e in run.publisher.of_type("contact.updated")]
    assert updated == ([str(boundary)] if renamed else [])
    assert run.publisher.of_type("contact.created") == []


@pytest.mark.parametrize("renamed", [False, True], ids=["unchanged", "renamed"])
async def test_a_delete_and_a_create_mid_run_keep_the_count_yet_hide_nothing(
    fake_chatwoot: FakeChatwoot, pg: PostgresConnector, table: str, renamed: bool
) -> None:
    ids = fake_chatwoot.backend.seed_contacts(N)
    boundary = ids[15]
    run = Run(fake_chatwoot, pg, table)
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        mark = await run.first_then_rename(client, boundary if renamed else None)
        # The new contact sorts last (page 2): Chatwoot's count stays 30 on every page.
        fake_chatwoot.change_before(
            delete_and_create(ids[2], "zzz@example.com"), query={"page": "2"}
        )
        report = await run.sync(client)

    counts = {
        r.response["meta"]["count"]
        for r in fake_chatwoot.requests[mark:]
        if r.path.endswith("/contacts") and r.response
    }
    assert counts == {N}, "the change must not show in the count"
    assert boundary in served_contact_ids(fake_chatwoot.requests[mark:]), "never read"
    assert (report.completed, report.unseen, report.failed) == (True, 0, 0)
    (late,) = set(fake_chatwoot.backend.contacts) - set(ids)
    rows = await run.rows()
    assert set(rows) == {*ids, late}
    assert rows[boundary] == ("renamed" if renamed else f"contact {boundary}")
    assert [e.entity_id for e in run.publisher.of_type("contact.created")] == [str(late)]
    updated = [e.entity_id for e in run.publisher.of_type("contact.updated")]
    assert updated == ([str(boundary)] if renamed else [])


async def test_doubt_that_outlasts_the_rescans_makes_the_run_incomplete(
    fake_chatwoot: FakeChatwoot, pg: PostgresConnector, table: str
) -> None:
    ids = fake_chatwoot.backend.seed_contacts(N)
    run = Run(fake_chatwoot, pg, table)
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        assert (await run.sync(client)).completed
        # Before page 2 of every pass (the first and both rescans): one deleted from page 1,
        # one created at the end.
        changes = iter([delete_and_create(ids[i], f"zzz{i}@example.com") for i in range(3)])

        async def next_change(backend: MockChatwoot) -> None:
            await next(changes)(backend)  # type: ignore[misc]

        fake_chatwoot.change_before(next_change, query={"page": "2"}, times=3)
        report = await run.sync(client)
        assert fake_chatwoot.changes[0].times == 0, "every pass met a change"
        assert (report.completed, report.partial, report.failed) == (False, True, 0)
        assert report.unseen >= 1
        checkpoint = await run.state.get("shift:checkpoint")
        assert checkpoint is not None
        assert (checkpoint["position"], checkpoint["passes"]) == (None, 1)
        # Nothing present the whole run was lost: the contacts the shifts hid were read by id.
        rows = await run.rows()
        assert set(fake_chatwoot.backend.contacts) <= set(rows)

        again = await run.sync(client)  # calm again: the next run proves it
    assert (again.completed, again.unseen) == (True, 0)
    created = Counter(e.entity_id for e in run.publisher.of_type("contact.created"))
    assert len(created) == N + 3
    assert max(created.values()) == 1


async def test_a_run_stopped_after_a_shift_resumes_without_loss_or_duplicates(
    fake_chatwoot: FakeChatwoot, pg: PostgresConnector, table: str
) -> None:
    ids = fake_chatwoot.backend.seed_contacts(N)
    boundary = ids[15]
    run = Run(fake_chatwoot, pg, table)
    stopped = asyncio.Event()

    async def stop_after_the_read_by_id(p: SyncProgress) -> None:
        if p.batches == 3:  # page 1, page 2, then the contact the shift hid, read by id
            stopped.set()
            await asyncio.sleep(3600)

    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        await run.first_then_rename(client, boundary)
        fake_chatwoot.change_before(
            delete_and_create(ids[2], "zzz@example.com"), query={"page": "2"}
        )
        task = asyncio.create_task(run.sync(client, on_progress=stop_after_the_read_by_id))
        waiter = asyncio.create_task(stopped.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        assert stopped.is_set(), "the run ended without reading the hidden contact by id"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        resumed = await run.sync(client)

    assert resumed.resumed_from is not None
    assert (resumed.completed, resumed.unseen) == (True, 0)
    (late,) = set(fake_chatwoot.backend.contacts) - set(ids)
    rows = await run.rows()
    assert set(rows) == {*ids, late}
    assert rows[boundary] == "renamed"
    total = await pg.query_value(f'SELECT count(*) FROM "{table}"')
    assert total == N + 1  # each contact once
    events = Counter((e.type, e.entity_id) for e in run.publisher.events)
    assert events == {("contact.created", str(late)): 1, ("contact.updated", str(boundary)): 1}


async def test_an_unreadable_list_of_known_ids_is_ignored_loudly_and_rewritten(
    fake_chatwoot: FakeChatwoot,
    pg: PostgresConnector,
    table: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = fake_chatwoot.backend.seed_contacts(N)
    run = Run(fake_chatwoot, pg, table)
    await run.state.put("shift:contact-ids", {"ids": ["1", True, None]})
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        with caplog.at_level(logging.WARNING):
            report = await run.sync(client)
    assert report.completed
    assert any("holds no list of contact ids" in r.getMessage() for r in caplog.records)
    stored = await run.state.get("shift:contact-ids")
    assert stored is not None
    assert stored["ids"] == ids
