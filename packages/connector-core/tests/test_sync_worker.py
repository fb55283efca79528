"""SyncWorker over in-memory connectors and leases: rounds, one runner per stream,
takeover of a dead worker's stream, lease loss, failing streams; StreamSync's on_batch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import pytest

import connector_core.sync
from connector_core import ConfigError, ConnectionFailedError, WriteResult
from connector_core.sync import (
    InMemoryLeases,
    InMemoryStateStore,
    StreamLeases,
    StreamRun,
    StreamSync,
    SyncBatch,
    SyncWorker,
)
from connector_testing import MemoryConfig, MemoryConnector

STREAMS = [f"s{i}" for i in range(6)]


class CountingSink:
    """A Writable around a MemoryConnector that notes which streams are being written
    at once and can hold a write until released (to kill a worker mid-run)."""

    def __init__(self, inner: MemoryConnector) -> None:
        self.inner = inner
        self.busy: set[str] = set()
        self.overlaps: list[str] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def write(self, stream: str, records: Iterable[Mapping[str, Any]]) -> WriteResult:
        if stream in self.busy:
            self.overlaps.append(stream)
        self.busy.add(stream)
        try:
            self.entered.set()
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
            return await self.inner.write(stream, list(records))
        finally:
            self.busy.discard(stream)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[MemoryConnector, MemoryConnector]]:
    source = MemoryConnector(MemoryConfig(store=f"src-{uuid.uuid4().hex}"))
    sink = MemoryConnector(MemoryConfig(store=f"dst-{uuid.uuid4().hex}"))
    async with source, sink:
        for stream in STREAMS:
            source.create_stream(stream, primary_key=("id",), cursor_field="id")
            await source.write(stream, [{"id": i, "v": f"{stream}-{i}"} for i in range(30)])
        yield source, sink


def syncs(source: Any, sink: Any, state: InMemoryStateStore, **options: Any) -> list[StreamSync]:
    return [
        StreamSync(source, s, sink, state=state, target=f"{s}_copy", batch_size=7, **options)
        for s in STREAMS
    ]


def test_the_sync_package_exports_exactly_its_public_api() -> None:
    assert set(connector_core.sync.__all__) == {
        "MAX_STATE_DEPTH", "BatchCallback", "DeleteMode", "FileStateStore", "InMemoryLeases",
        "InMemoryStateStore", "JsonObject", "ProgressCallback", "RunCallback", "StateStore",
        "StreamLeases", "StreamReport", "StreamRun", "StreamSync", "SyncBatch",
        "SyncProgress", "SyncWorker", "check_compatible", "decode_state", "field_type_of",
        "state_value", "sync_streams",
    }  # fmt: skip
    for name in connector_core.sync.__all__:
        assert hasattr(connector_core.sync, name)


async def test_on_batch_sees_each_applied_batch_before_its_checkpoint(pair: Any) -> None:
    source, sink = pair
    state = InMemoryStateStore()
    seen: list[tuple[int, Any]] = []

    async def on_batch(batch: SyncBatch) -> None:
        assert batch.key_fields == ("id",)
        assert batch.sink_stream == "s0_copy"
        # Applied already, not checkpointed yet.
        assert {r["id"] async for r in sink.read("s0_copy")} >= {r["id"] for r in batch.records}
        seen.append((len(batch.records), await sync.checkpoint()))

    sync = StreamSync(source, "s0", sink, state=state, target="s0_copy", batch_size=7,
                      on_batch=on_batch)  # fmt: skip
    await sync.run()
    assert [n for n, _ in seen] == [7, 7, 7, 7, 2]
    assert seen[0][1] is None  # the first batch came before any checkpoint


async def test_a_failing_on_batch_leaves_its_batch_unchecked(pair: Any) -> None:
    source, sink = pair

    def on_batch(batch: SyncBatch) -> None:
        if batch.records[0]["id"] >= 14:
            raise ConnectionFailedError("broker down")

    state = InMemoryStateStore()
    sync = StreamSync(source, "s0", sink, state=state, batch_size=7, on_batch=on_batch)
    with pytest.raises(ConnectionFailedError):
        await sync.run()
    assert (await sync.checkpoint() or {})["cursor"] == 13  # two batches, not the third


def test_sync_batch_tells_deletes() -> None:
    batch = SyncBatch("n", "t", [{"id": 1, "gone": True}, {"id": 2, "gone": None}], ("id",), "gone")
    assert [batch.is_deleted(r) for r in batch.records] == [True, False]
    assert not SyncBatch("n", "t", [], (), None).is_deleted({"gone": True})


async def test_three_workers_run_each_stream_once_per_round(pair: Any) -> None:
    source, inner = pair
    sink = CountingSink(inner)
    state = InMemoryStateStore()
    board: dict[str, str] = {}
    runs: list[StreamRun] = []
    workers = [
        SyncWorker(syncs(source, sink, state), InMemoryLeases(board), every=0, poll=0.01,
                   worker_id=f"w{i}", on_run=runs.append)
        for i in range(3)
    ]  # fmt: skip
    assert isinstance(workers[0].leases, StreamLeases)
    done = await asyncio.gather(*(w.run(until_round=3) for w in workers))
    assert done == [3, 3, 3]
    per_round = sorted((r.name, r.round) for r in runs)
    assert per_round == sorted((f"{s}->{s}_copy", n) for s in STREAMS for n in (1, 2, 3))
    assert sink.overlaps == []
    assert len({r.worker for r in runs}) > 1  # the work was shared
    assert board == {}  # every lease given back
    for stream in STREAMS:
        assert len([r async for r in inner.read(f"{stream}_copy")]) == 30
    assert all(r.error is None and r.report is not None for r in runs)


async def test_a_dead_workers_stream_finishes_on_another_in_the_same_round(pair: Any) -> None:
    source, inner = pair
    sink = CountingSink(inner)
    sink.gate = asyncio.Event()  # the first worker's first write hangs
    state = InMemoryStateStore()
    board: dict[str, str] = {}
    victim_leases = InMemoryLeases(board, owner="victim")
    victim = SyncWorker(syncs(source, sink, state), victim_leases, poll=0.01, worker_id="v")
    dying = asyncio.ensure_future(victim.run(until_round=1))
    await sink.entered.wait()
    (held,) = victim_leases.held
    dying.cancel()  # the process dies: its lease goes with its session
    with pytest.raises(asyncio.CancelledError):
        await dying
    board.clear()
    sink.gate.set()
    runs: list[StreamRun] = []
    survivor = SyncWorker(syncs(source, sink, state), InMemoryLeases(board), poll=0.01,
                          worker_id="s", on_run=runs.append)  # fmt: skip
    assert await survivor.run(until_round=1) == 1
    assert held in {r.name for r in runs}
    assert sorted(r.name for r in runs) == sorted(f"{s}->{s}_copy" for s in STREAMS)


async def test_a_stream_leased_elsewhere_waits_for_its_holder(pair: Any) -> None:
    source, sink = pair
    state = InMemoryStateStore()
    board = {"s0->s0_copy": "someone else"}
    worker = SyncWorker(syncs(source, sink, state), InMemoryLeases(board), poll=0.01)
    task = asyncio.ensure_future(worker.run(until_round=1))
    await asyncio.sleep(0.2)
    assert not task.done()
    assert worker.runs == 5
    del board["s0->s0_copy"]  # its holder is gone without marking it: taken over
    assert await task == 1
    assert worker.runs == 6


async def test_lost_leases_stop_the_run_in_progress(pair: Any) -> None:
    source, inner = pair
    sink = CountingSink(inner)
    sink.gate = asyncio.Event()
    leases = InMemoryLeases()
    worker = SyncWorker(syncs(source, sink, InMemoryStateStore()), leases, poll=0.01)
    task = asyncio.ensure_future(worker.run())
    await sink.entered.wait()
    leases.drop()
    with pytest.raises(ConnectionFailedError, match="dropped"):
        await task
    assert worker.runs == 0
    assert sink.busy == set()


async def test_a_failing_stream_is_marked_and_does_not_hold_up_the_round(pair: Any) -> None:
    source, sink = pair
    state = InMemoryStateStore()
    runs: list[StreamRun] = []
    broken = StreamSync(source, "missing", sink, state=state)
    worker = SyncWorker([*syncs(source, sink, state), broken], InMemoryLeases(), every=0,
                        poll=0.01, on_run=runs.append)  # fmt: skip
    assert await worker.run(until_round=2) == 2
    failed = [r for r in runs if r.error is not None]
    assert [(r.name, r.round) for r in failed] == [("missing->missing", 1), ("missing->missing", 2)]
    assert (await state.get("missing->missing:round") or {})["error"] == "NotFoundError"
    assert (await worker.marks()) == {s.name: 2 for s in worker.syncs}


def test_bad_settings_are_named(pair: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        SyncWorker([], object(), every=-1, poll=0)
    assert set(caught.value.fields) == {"syncs", "leases", "every", "poll"}


async def test_twice_the_same_name_is_refused(pair: Any) -> None:
    source, sink = pair
    state = InMemoryStateStore()
    twice = [StreamSync(source, "s0", sink, state=state) for _ in range(2)]
    with pytest.raises(ConfigError, match="s0->s0"):
        SyncWorker(twice, InMemoryLeases())
