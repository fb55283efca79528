"""The generic incremental sync, with MemoryConnector as the sink and an in-memory source."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from connector_adapters import (
    IncrementalSync,
    InMemoryEventPublisher,
    InMemoryStateStore,
    JsonObject,
    SourceBatch,
    SyncItem,
    SyncProgress,
    fingerprint,
)
from connector_core import Record, RecordError, SerializationError, WriteResult
from connector_testing import MemoryConfig, MemoryConnector, unique_name

BATCH = 10


class ListSource:
    """Items from a list, ``BATCH`` at a time; the position is the next offset."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.starts: list[int] = []

    async def batches(
        self, position: JsonObject | None
    ) -> AsyncIterator[SourceBatch[dict[str, Any]]]:
        offset = int((position or {}).get("offset", 0))
        self.starts.append(offset)
        while offset < len(self.items):
            chunk = self.items[offset : offset + BATCH]
            offset += len(chunk)
            yield SourceBatch(items=chunk, position={"offset": offset})


def mapper(item: dict[str, Any]) -> SyncItem:
    return SyncItem(entity_id=str(item["id"]), record={"id": item["id"], "name": item["name"]})


class CrashingSink:
    """A MemoryConnector that fails the ``fail_on``-th write with a crash."""

    def __init__(self, inner: MemoryConnector, fail_on: int) -> None:
        self.inner = inner
        self.fail_on = fail_on
        self.writes = 0

    async def write(self, stream: str, records: Iterable[Record]) -> WriteResult:
        self.writes += 1
        if self.writes == self.fail_on:
            raise RuntimeError("crash")
        return await self.inner.write(stream, records)


class RejectingSink:
    """Writes through ``inner`` except records whose id is in ``reject`` (reported per index).

    ``anonymous=True`` reports the failures as a count only, without saying which records.
    """

    def __init__(self, inner: MemoryConnector, reject: set[int], *, anonymous: bool = False):
        self.inner, self.reject, self.anonymous = inner, reject, anonymous

    async def write(self, stream: str, records: Iterable[Record]) -> WriteResult:
        batch = list(records)
        ok = [r for r in batch if r["id"] not in self.reject]
        errors = tuple(
            RecordError(index=i, message="value too long", key=r["id"])
            for i, r in enumerate(batch) if r["id"] in self.reject
        )  # fmt: skip
        result = await self.inner.write(stream, ok)
        if self.anonymous:
            return WriteResult(written=result.written, failed=len(errors))
        return WriteResult(written=result.written, failed=len(errors), errors=errors)


@pytest.fixture
async def memory() -> AsyncIterator[MemoryConnector]:
    connector = MemoryConnector(MemoryConfig(store=unique_name("sync")))
    async with connector:
        connector.create_stream("contacts", primary_key=("id",))
        yield connector
    MemoryConnector.reset_store(connector.config.store)


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"n{i}"} for i in range(1, n + 1)]


def make(source: ListSource, sink: Any, publisher: InMemoryEventPublisher,
         state: InMemoryStateStore, **kwargs: Any) -> IncrementalSync[dict[str, Any]]:  # fmt: skip
    return IncrementalSync(
        name="test", source=source, mapper=mapper, sink=sink, stream="contacts",
        publisher=publisher, state=state, source_system="src", entity_type="contact", **kwargs,
    )  # fmt: skip


async def stored(memory: MemoryConnector) -> list[Record]:
    return [r async for r in memory.read("contacts")]


async def test_full_then_incremental(memory: MemoryConnector) -> None:
    data = items(35)
    source, publisher, state = ListSource(data), InMemoryEventPublisher(), InMemoryStateStore()
    sync = make(source, memory, publisher, state)
    first = await sync.run(correlation_id="c1")
    assert (first.batches, first.seen, first.created, first.written, first.events) == (
        4, 35, 35, 35, 35,
    )  # fmt: skip
    rows = await stored(memory)
    assert len(rows) == 35
    assert all(r["synced_at"] is not None for r in rows)
    assert {e.correlation_id for e in publisher.events} == {"c1"}
    checkpoint = await sync.checkpoint()
    assert checkpoint is not None
    assert (checkpoint["position"], checkpoint["passes"]) == (None, 1)

    publisher.clear()
    unchanged = await sync.run()
    assert (unchanged.written, unchanged.events, unchanged.unchanged) == (0, 0, 35)

    data[3]["name"] = "changed"
    data[30]["name"] = "changed too"
    data.append({"id": 36, "name": "new"})
    again = await sync.run()
    assert (again.created, again.updated, again.written) == (1, 2, 3)
    assert sorted((e.type, e.entity_id) for e in publisher.events) == [
        ("contact.created", "36"), ("contact.updated", "31"), ("contact.updated", "4"),
    ]  # fmt: skip
    names = {r["id"]: r["name"] for r in await stored(memory)}
    assert (names[4], names[31], names[36], len(names)) == ("changed", "changed too", "new", 36)


async def test_crash_between_batches_reruns_at_most_one_batch(memory: MemoryConnector) -> None:
    source, publisher, state = ListSource(items(50)), InMemoryEventPublisher(), InMemoryStateStore()
    crashing = CrashingSink(memory, fail_on=3)
    with pytest.raises(RuntimeError, match="crash"):
        await make(source, crashing, publisher, state).run()
    assert len(await stored(memory)) == 20  # two batches committed
    report = await make(source, memory, publisher, state).run()
    assert report.resumed_from == {"offset": 20}
    assert source.starts == [0, 20]
    assert report.seen == 30  # only what was not committed
    rows = await stored(memory)
    assert sorted(r["id"] for r in rows) == list(range(1, 51))
    assert len(publisher.of_type("contact.created")) == 50


async def test_crash_after_write_before_checkpoint_never_duplicates(
    memory: MemoryConnector,
) -> None:
    source, state = ListSource(items(30)), InMemoryStateStore()
    publisher = InMemoryEventPublisher()

    def explode(event: Any) -> None:
        if event.entity_id == "15":
            raise RuntimeError("publisher down")

    publisher.subscribe(explode)
    with pytest.raises(RuntimeError, match="publisher down"):
        await make(source, memory, publisher, state).run()
    assert len(await stored(memory)) == 20  # batch 2 was written, not checkpointed
    calm = InMemoryEventPublisher()
    report = await make(source, memory, calm, state).run()
    assert report.resumed_from == {"offset": 10}
    assert report.seen == 20  # the one uncommitted batch again, then the last
    assert sorted(r["id"] for r in await stored(memory)) == list(range(1, 31))
    assert sorted(int(e.entity_id) for e in calm.events) == list(range(11, 31))


async def test_cancel_then_resume(memory: MemoryConnector) -> None:
    source, publisher, state = (
        ListSource(items(100)),
        InMemoryEventPublisher(),
        InMemoryStateStore(),
    )
    third = asyncio.Event()

    async def progress(p: SyncProgress) -> None:
        if p.batches == 3:
            third.set()
            await asyncio.sleep(3600)  # hold here until cancelled

    task = asyncio.create_task(make(source, memory, publisher, state, on_progress=progress).run())
    await third.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    report = await make(source, memory, publisher, state).run()
    assert report.resumed_from == {"offset": 30}
    assert sorted(r["id"] for r in await stored(memory)) == list(range(1, 101))
    assert len(publisher.events) == 100


async def test_progress_is_reported_after_every_batch(memory: MemoryConnector) -> None:
    seen: list[SyncProgress] = []
    sync = make(ListSource(items(25)), memory, InMemoryEventPublisher(), InMemoryStateStore(),
                on_progress=seen.append)  # fmt: skip
    await sync.run()
    assert [(p.batches, p.seen, p.created, p.position) for p in seen] == [
        (1, 10, 10, {"offset": 10}), (2, 20, 20, {"offset": 20}), (3, 25, 25, {"offset": 25}),
    ]  # fmt: skip


async def test_rejected_records_are_reported_and_retried(memory: MemoryConnector) -> None:
    data = items(5)
    data[2] = {"id": None, "name": "no key"}  # MemoryConnector rejects a missing key

    def keyed(item: dict[str, Any]) -> SyncItem:
        return SyncItem(entity_id=str(item["id"] or "none"), record=item)

    state, publisher = InMemoryStateStore(), InMemoryEventPublisher()
    sync = IncrementalSync(
        name="rejects", source=ListSource(data), mapper=keyed, sink=memory, stream="contacts",
        publisher=publisher, state=state, source_system="s", entity_type="contact",
    )  # fmt: skip
    report = await sync.run()
    assert (report.written, report.failed, report.events) == (4, 1, 4)
    assert report.errors[0].index == 2
    assert await state.get("rejects:fp:none") is None
    again = await sync.run()
    assert (again.failed, again.unchanged) == (1, 4)  # retried, still rejected


def test_sync_name_must_be_usable_as_a_key_prefix(memory: MemoryConnector) -> None:
    with pytest.raises(ValueError, match="':'"):
        IncrementalSync(
            name="a:b", source=ListSource([]), mapper=mapper, sink=memory, stream="s",
            publisher=InMemoryEventPublisher(), state=InMemoryStateStore(),
            source_system="s", entity_type="e",
        )  # fmt: skip


async def test_a_partly_failed_batch_is_loud_not_checkpointed_and_retried(
    memory: MemoryConnector, caplog: pytest.LogCaptureFixture
) -> None:
    source, publisher, state = ListSource(items(25)), InMemoryEventPublisher(), InMemoryStateStore()
    rejecting = RejectingSink(memory, reject={4, 17})
    with caplog.at_level(logging.INFO, logger="connector_adapters.sync"):
        report = await make(source, rejecting, publisher, state).run()
    assert (report.written, report.failed, report.events, report.created) == (23, 2, 23, 23)
    assert [e.key for e in report.errors] == [4, 17]
    assert report.reached_end
    assert report.partial
    assert not report.completed
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("rejected 1 of 10" in m and "key=4" in m and "value too long" in m
               for m in warnings)  # fmt: skip
    assert any("INCOMPLETE" in m and "2 failed" in m for m in warnings)
    assert not any("complete:" in r.getMessage() for r in caplog.records)
    assert await state.get("test:fp:4") is None
    assert await state.get("test:fp:17") is None
    assert await state.get("test:fp:5") is not None
    checkpoint = await state.get("test:checkpoint")
    assert checkpoint is not None
    assert (checkpoint["position"], checkpoint["passes"], checkpoint["failed"]) == (None, 0, 2)
    assert "4" not in {e.entity_id for e in publisher.events}

    publisher.clear()
    retry = await make(source, memory, publisher, state).run()  # the sink accepts them now
    assert retry.completed
    assert (retry.failed, retry.written, retry.unchanged) == (0, 2, 23)
    assert sorted(e.entity_id for e in publisher.of_type("contact.created")) == ["17", "4"]
    assert sorted(r["id"] for r in await stored(memory)) == list(range(1, 26))


async def test_failures_before_a_crash_keep_the_resumed_pass_incomplete(
    memory: MemoryConnector,
) -> None:
    source, publisher, state = ListSource(items(30)), InMemoryEventPublisher(), InMemoryStateStore()

    class RejectThenCrash(RejectingSink):
        writes = 0

        async def write(self, stream: str, records: Iterable[Record]) -> WriteResult:
            self.writes += 1
            if self.writes == 2:
                raise RuntimeError("crash")
            return await super().write(stream, records)

    with pytest.raises(RuntimeError, match="crash"):
        await make(source, RejectThenCrash(memory, reject={3}), publisher, state).run()
    resumed = await make(source, memory, publisher, state).run()
    assert resumed.resumed_from == {"offset": 10}
    assert (resumed.failed, resumed.failed_earlier) == (0, 1)
    assert not resumed.completed
    assert resumed.partial
    again = await make(source, memory, publisher, state).run()  # a new pass retries id 3
    assert again.completed
    assert again.written == 1


async def test_failures_the_sink_does_not_attribute_fingerprint_nothing_of_the_batch(
    memory: MemoryConnector,
) -> None:
    source, publisher, state = ListSource(items(20)), InMemoryEventPublisher(), InMemoryStateStore()
    report = await make(source, RejectingSink(memory, {12}, anonymous=True), publisher, state).run()
    assert (report.failed, report.events, report.completed) == (10, 10, False)
    assert await state.get_many([f"test:fp:{i}" for i in range(11, 21)]) == {}
    assert len(await state.get_many([f"test:fp:{i}" for i in range(1, 11)])) == 10


def test_a_record_that_cannot_be_encoded_has_no_fingerprint_but_a_typed_error() -> None:
    loop: dict[str, Any] = {"id": 1}
    loop["self"] = loop
    with pytest.raises(SerializationError, match="cannot fingerprint"):
        fingerprint(loop)
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SerializationError, match="nests too deeply"):
        fingerprint({"id": 1, "tree": deep})


async def test_an_item_the_source_reports_deleted_is_published_as_deleted(
    memory: MemoryConnector,
) -> None:
    data = items(12)
    source, publisher, state = ListSource(data), InMemoryEventPublisher(), InMemoryStateStore()

    def marking(item: dict[str, Any]) -> SyncItem:
        gone = bool(item.get("gone"))
        return SyncItem(
            entity_id=str(item["id"]), record={"id": item["id"], "name": item["name"]},
            event="deleted" if gone else None,
        )  # fmt: skip

    sync = make(source, memory, publisher, state)
    sync.mapper = marking
    first = await sync.run()
    assert (first.created, first.deleted) == (12, 0)
    data[4].update(gone=True, name="n5 (deleted)")
    publisher.clear()
    second = await sync.run()
    assert (second.created, second.updated, second.deleted, second.events) == (0, 0, 1, 1)
    assert [(e.type, e.entity_id) for e in publisher.events] == [("contact.deleted", "5")]
