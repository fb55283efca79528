"""sync_contacts over offset pages whose order is not stable: resume verification and rescans.

In memory (MockChatwoot and MemoryConnector); the end-to-end run with the contract-checked
fake server and PostgreSQL is in test_chatwoot_sync_postgres.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from connector_adapters import InMemoryEventPublisher, InMemoryStateStore, SyncProgress
from connector_adapters.chatwoot import ChatwootContact, MockChatwoot, sync_contacts
from connector_testing import MemoryConfig, MemoryConnector, unique_name

TABLE = "chatwoot_contacts"


class UnstableTies(MockChatwoot):
    """Like Chatwoot's ``ORDER BY email`` without a tie-breaker: NULL-email contacts come
    last, in an order that flips between requests (per call, or per page parity)."""

    def __init__(self, *, by_page: bool = False) -> None:
        super().__init__()
        self.by_page = by_page
        self.requests = 0
        self.current_page = 1

    async def list_contacts(self, *, page: int = 1, sort: str | None = None,
                            correlation_id: str | None = None):  # type: ignore[no-untyped-def]  # fmt: skip
        self.requests += 1
        self.current_page = page
        return await super().list_contacts(page=page, sort=sort, correlation_id=correlation_id)

    def _sorted(self, contacts: list[ChatwootContact], sort: str | None) -> list[ChatwootContact]:
        ordered = super()._sorted(contacts, sort)
        emailed = [c for c in ordered if c.email is not None]
        ties = sorted((c for c in ordered if c.email is None), key=lambda c: c.id)
        flip = (self.current_page if self.by_page else self.requests) % 2 == 0
        return emailed + (ties[::-1] if flip else ties)


@pytest.fixture
async def memory() -> AsyncIterator[MemoryConnector]:
    connector = MemoryConnector(MemoryConfig(store=unique_name("cw")))
    async with connector:
        connector.create_stream(TABLE, primary_key=("chatwoot_id",))
        yield connector
    MemoryConnector.reset_store(connector.config.store)


async def _seed(client: MockChatwoot, emailed: int, null_email: int) -> list[int]:
    ids = client.seed_contacts(emailed)
    for i in range(null_email):
        ids.append((await client.create_contact(inbox_id=1, name=f"no email {i}")).id)
    return ids


async def _stored(memory: MemoryConnector) -> Counter[int]:
    return Counter([r["chatwoot_id"] async for r in memory.read(TABLE)])


async def test_contacts_skipped_by_unstable_tie_order_are_found_by_a_rescan(
    memory: MemoryConnector,
) -> None:
    client = UnstableTies()
    ids = await _seed(client, emailed=5, null_email=20)  # page 2 repeats 10 ties of page 1
    publisher, state = InMemoryEventPublisher(), InMemoryStateStore()
    report = await sync_contacts(client, memory, publisher=publisher, state=state)
    assert report.completed
    assert report.unseen == 0
    assert await _stored(memory) == Counter(ids)
    assert sorted(int(e.entity_id) for e in publisher.of_type("contact.created")) == ids
    assert report.created == 25
    assert report.unchanged > 0


async def test_contacts_never_seen_make_the_run_incomplete_and_loud(
    memory: MemoryConnector, caplog: pytest.LogCaptureFixture
) -> None:
    client = UnstableTies(by_page=True)  # every scan misses the same 10 ties
    await _seed(client, emailed=5, null_email=20)
    state = InMemoryStateStore()
    with caplog.at_level(logging.WARNING):
        report = await sync_contacts(client, memory, publisher=InMemoryEventPublisher(),
                                     state=state, name="lossy")  # fmt: skip
    assert (report.completed, report.partial, report.unseen) == (False, True, 10)
    assert client.requests == 3 * 3  # the pass and two rescans, each pages 1, 2 and 3 (empty)
    messages = [r.getMessage() for r in caplog.records]
    assert any("saw 15 of 25 contacts; rescanning" in m for m in messages)
    assert any("INCOMPLETE" in m and "10 never seen" in m for m in messages)
    checkpoint = await state.get("lossy:checkpoint")
    assert checkpoint is not None
    assert (checkpoint["position"], checkpoint["passes"]) == (None, 0)


async def test_a_resumed_run_rereads_the_pages_before_its_checkpoint(
    memory: MemoryConnector,
) -> None:
    client = MockChatwoot()
    ids = client.seed_contacts(150)  # 10 pages sorted by email
    publisher, state = InMemoryEventPublisher(), InMemoryStateStore()
    fourth = asyncio.Event()

    async def hold(p: SyncProgress) -> None:
        if p.batches == 4:
            fourth.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(sync_contacts(client, memory, publisher=publisher, state=state,
                                             on_progress=hold))  # fmt: skip
    await fourth.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # While stopped: 20 contacts are deleted and 5 created before the resume point (page 5),
    # so 15 not yet synced contacts move from page 5 to page 4, and 5 new sit on page 1.
    for cid in ids[:20]:
        await client.delete_contact(cid)
    new = [(await client.create_contact(inbox_id=1, email=f"aaa{i}@example.com")).id
           for i in range(5)]  # fmt: skip
    null = [(await client.create_contact(inbox_id=1, name=f"n{i}")).id for i in range(3)]
    publisher.clear()
    resumed = await sync_contacts(client, memory, publisher=publisher, state=state)
    assert resumed.resumed_from == {"page": 5}
    assert resumed.completed
    assert resumed.unseen == 0
    assert await _stored(memory) == Counter(ids + new + null)  # all, each once
    created = Counter(int(e.entity_id) for e in publisher.of_type("contact.created"))
    assert set(created) == set(ids[60:] + new + null)  # nothing announced twice but the
    assert max(created.values()) == 1  # page in flight, which was committed already
    assert publisher.of_type("contact.updated") == []
