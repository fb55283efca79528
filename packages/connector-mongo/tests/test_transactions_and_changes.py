"""Transactions and change streams need a real MongoDB (a replica set): FerretDB 1.x has
neither, so these tests are marked ``requires_mongodb`` and listed as deselected, with the
reason, when no real MongoDB is given (CONNECTOR_TEST_REAL_MONGODB_URL or Docker)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from mongo_support import make_config

from connector_core import InvalidRequestError
from connector_mongo import ChangeEvent, MongoConnector

pytestmark = [pytest.mark.integration, pytest.mark.requires_mongodb]


@pytest.fixture
async def real(real_mongodb_url: str, unique_collection: str) -> AsyncIterator[MongoConnector]:
    async with MongoConnector(make_config(real_mongodb_url)) as connector:
        await connector.command({"create": unique_collection})
        try:
            yield connector
        finally:
            await connector.drop_collection(unique_collection)


async def test_a_transaction_commits_when_the_block_ends(
    real: MongoConnector, unique_collection: str
) -> None:
    async with real.transaction() as tx:
        await real.insert_one(unique_collection, {"_id": 1})
        await real.update_one(unique_collection, {"_id": 1}, {"$set": {"paid": True}})
        assert tx.session.in_transaction
    assert await real.find_one(unique_collection, {"_id": 1}) == {"_id": 1, "paid": True}


async def test_a_transaction_aborts_when_the_block_raises(
    real: MongoConnector, unique_collection: str
) -> None:
    seen_inside: list[int] = []

    async def failing_block() -> None:
        async with real.transaction():
            await real.insert_one(unique_collection, {"_id": 1})
            seen_inside.append(await real.count(unique_collection))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing_block()
    assert seen_inside == [1]  # inside, this task saw its own write...
    assert await real.count(unique_collection) == 0  # ...and after the abort nobody does


async def test_transactions_do_not_nest(real: MongoConnector) -> None:
    async with real.transaction():
        with pytest.raises(InvalidRequestError, match="already open"):
            async with real.transaction():
                pass


async def test_watch_yields_changes_and_resumes_from_a_json_token(
    real: MongoConnector, unique_collection: str
) -> None:
    stream = real.watch(unique_collection, full_document="updateLookup", max_await=0.2)
    events: list[ChangeEvent] = []

    async def collect(n: int) -> None:
        async for event in stream:
            events.append(event)
            if len(events) == n:
                return

    task = asyncio.create_task(collect(2))
    await asyncio.sleep(0.5)  # the stream is open before the writes
    await real.insert_one(unique_collection, {"_id": 1})
    await real.update_one(unique_collection, {"_id": 1}, {"$set": {"v": 2}})
    await real.insert_one(unique_collection, {"_id": 2})
    await asyncio.wait_for(task, 30)
    await stream.close()
    assert [e.operation for e in events] == ["insert", "update"]
    assert events[1].full_document == {"_id": 1, "v": 2}
    saved = json.dumps(events[1].resume_token)  # as a consumer would store it
    async with real.watch(unique_collection, resume_after=json.loads(saved)) as resumed:
        after = await asyncio.wait_for(anext(resumed), 30)
    assert (after.operation, after.document_key) == ("insert", {"_id": 2})
