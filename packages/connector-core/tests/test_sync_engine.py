"""StreamSync over in-memory connectors: batches, checkpoints, schema, deletes, progress."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from connector_core import (
    Catalog,
    ConfigError,
    ConnectionFailedError,
    FieldType,
    SchemaChange,
    SchemaChangeError,
    Stream,
    SyncWriteError,
    WriteResult,
)
from connector_core.sync import (
    FileStateStore,
    InMemoryStateStore,
    StreamSync,
    SyncProgress,
    sync_streams,
)
from connector_testing import MemoryConfig, MemoryConnector


@pytest.fixture
async def pair() -> AsyncIterator[tuple[MemoryConnector, MemoryConnector]]:
    source = MemoryConnector(MemoryConfig(store=f"src-{uuid.uuid4().hex}"))
    sink = MemoryConnector(MemoryConfig(store=f"dst-{uuid.uuid4().hex}"))
    async with source, sink:
        source.create_stream("items", primary_key=("id",), cursor_field="updated")
        yield source, sink


def rows(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"n{i}", "updated": i, **extra} for i in range(start, start + n)]


async def sink_rows(sink: MemoryConnector, stream: str) -> list[dict[str, Any]]:
    return sorted([dict(r) async for r in sink.read(stream)], key=lambda r: r["id"])


class FlakySink:
    """A Writable around a MemoryConnector that fails the n-th write, to see what a
    crash between batches leaves behind; records every batch it is given."""

    def __init__(self, inner: MemoryConnector, fail_at: int | None = None) -> None:
        self.inner, self.fail_at, self.batches = inner, fail_at, []

    async def write(self, stream: str, records: Iterable[Mapping[str, Any]]) -> WriteResult:
        batch = list(records)
        self.batches.append(batch)
        if self.fail_at is not None and len(self.batches) == self.fail_at:
            raise ConnectionFailedError("sink went away")
        return await self.inner.write(stream, batch)


class ProvisionedSink(FlakySink):
    """A Provisionable, Deletable sink that remembers what it was asked to make."""

    def __init__(self, inner: MemoryConnector) -> None:
        super().__init__(inner)
        self.fields: dict[str, str] = {}
        self.ensured: list[Stream] = []
        self.deleted: list[Any] = []

    async def ensure_stream(self, name: str, schema: Stream) -> SchemaChange:
        self.ensured.append(schema)
        created = not self.fields
        added = tuple(f.name for f in schema.fields if f.name not in self.fields)
        for f in schema.fields:
            self.fields.setdefault(f.name, f.type.value)
        return SchemaChange(created=created, added=() if created else added)

    async def delete_keys(self, stream: str, keys: Iterable[Mapping[str, object]]) -> WriteResult:
        batch = list(keys)
        self.deleted.extend(k["id"] for k in batch)
        for key in batch:
            await self.inner.delete(stream, key["id"])
        return WriteResult(written=len(batch))


async def test_copies_every_record_in_batches_and_checkpoints_each(pair: Any) -> None:
    source, sink = pair
    await source.write("items", rows(25))
    state = InMemoryStateStore()
    seen: list[SyncProgress] = []
    sync = StreamSync(source, "items", sink, state=state, batch_size=10, on_progress=seen.append)
    report = await sync.run()
    assert await sink_rows(sink, "items") == rows(25)
    assert (report.records, report.batches, report.written) == (25, 3, 25)
    assert [p.records for p in seen] == [10, 20, 25]
    assert all(p.rate > 0 for p in seen)
    assert await sync.checkpoint() == report.checkpoint == {"cursor": 24, "key": [24]}


async def test_a_rerun_reads_only_what_came_after_the_checkpoint(pair: Any) -> None:
    source, sink = pair
    await source.write("items", rows(10))
    state = InMemoryStateStore()
    flaky = FlakySink(sink)
    await StreamSync(source, "items", flaky, state=state, batch_size=4).run()
    await source.write("items", rows(3, start=10))
    report = await StreamSync(source, "items", flaky, state=state, batch_size=4).run()
    assert report.records == 3
    assert [r["id"] for r in flaky.batches[-1]] == [10, 11, 12]
    assert await sink_rows(sink, "items") == rows(13)


async def test_a_crash_repeats_at_most_the_batch_that_was_not_checkpointed(pair: Any) -> None:
    source, sink = pair
    await source.write("items", rows(30))
    state = InMemoryStateStore()
    flaky = FlakySink(sink, fail_at=3)
    with pytest.raises(ConnectionFailedError):
        await StreamSync(source, "items", flaky, state=state, batch_size=10).run()
    # Batches 1 and 2 were checkpointed; batch 3 was not written.
    assert await StreamSync(source, "items", sink, state=state).checkpoint() == {
        "cursor": 19,
        "key": [19],
    }
    flaky.fail_at = None
    report = await StreamSync(source, "items", flaky, state=state, batch_size=10).run()
    assert report.records == 10
    assert [r["id"] for r in flaky.batches[-1]] == list(range(20, 30))
    assert await sink_rows(sink, "items") == rows(30)


async def test_records_the_sink_rejects_stop_the_stream_unchecked(pair: Any) -> None:
    source, sink = pair
    await source.write("items", rows(5))
    sink.create_stream("items", primary_key=("missing",))  # every record lacks this key
    state = InMemoryStateStore()
    sync = StreamSync(source, "items", sink, state=state, batch_size=10)
    with pytest.raises(SyncWriteError) as caught:
        await sync.run()
    assert len(caught.value.errors) == 5
    assert "missing key field" in str(caught.value)
    assert await sync.checkpoint() is None


async def test_the_sink_is_provisioned_from_the_discovered_stream(pair: Any) -> None:
    source, sink = pair
    await source.write("items", rows(3))
    provisioned = ProvisionedSink(sink)
    report = await StreamSync(source, "items", provisioned, state=InMemoryStateStore()).run()
    assert report.created
    assert [f.name for f in provisioned.ensured[0].fields] == ["id", "name", "updated"]
    assert provisioned.ensured[0].primary_key == ("id",)


async def test_a_field_the_source_adds_later_is_added_to_the_sink(pair: Any) -> None:
    source, sink = pair
    await source.write("items", rows(3))
    provisioned = ProvisionedSink(sink)
    state = InMemoryStateStore()
    await StreamSync(source, "items", provisioned, state=state).run()
    await source.write("items", rows(2, start=3, colour="red"))
    report = await StreamSync(source, "items", provisioned, state=state).run()
    assert report.added_fields == ("colour",)
    assert provisioned.fields["colour"] == "string"
    assert [r.get("colour") for r in await sink_rows(sink, "items")] == [None] * 3 + ["red"] * 2


async def test_a_field_that_appears_mid_run_is_added_before_its_batch(pair: Any) -> None:
    source, sink = pair
    await source.write("items", rows(4) + rows(4, start=4, colour="red"))
    provisioned = ProvisionedSink(sink)
    # Discovery sees the fields of the first records only.
    provisioned_state = InMemoryStateStore()
    report = await StreamSync(
        source, "items", provisioned, state=provisioned_state, batch_size=4
    ).run()
    assert "colour" in provisioned.fields
    assert report.records == 8


async def test_records_of_a_batch_get_one_shape(pair: Any) -> None:
    source, sink = pair
    await source.write("items", [{"id": 1, "updated": 1, "a": 1}, {"id": 2, "updated": 2}])
    flaky = FlakySink(sink)
    await StreamSync(source, "items", flaky, state=InMemoryStateStore()).run()
    assert [sorted(r) for r in flaky.batches[0]] == [["a", "id", "updated"]] * 2


async def test_an_incompatible_type_change_stops_before_writing(pair: Any) -> None:
    source, sink = pair
    await source.write("items", rows(2))
    state = InMemoryStateStore()
    flaky = FlakySink(sink)
    await StreamSync(source, "items", flaky, state=state).run()
    # name: now an integer in every record
    await source.write("items", [{"id": i, "name": i, "updated": 9 + i} for i in range(2)])
    with pytest.raises(SchemaChangeError) as caught:
        await StreamSync(source, "items", flaky, state=state).run()
    assert (caught.value.field, caught.value.was, caught.value.now) == (
        "name",
        "string",
        "integer",
    )
    assert len(flaky.batches) == 1


async def test_soft_deletes_are_written_and_counted(pair: Any) -> None:
    source, sink = pair
    await source.write("items", rows(3, deleted=None))
    await source.write("items", [{"id": 1, "name": "n1", "updated": 5, "deleted": True}])
    report = await StreamSync(
        source, "items", sink, state=InMemoryStateStore(), deleted_field="deleted"
    ).run()
    assert report.deleted == 1
    assert [r["deleted"] for r in await sink_rows(sink, "items")] == [None, True, None]


async def test_hard_deletes_remove_the_key_from_the_sink(pair: Any) -> None:
    source, sink = pair
    await source.write("items", rows(3, deleted=None))
    state = InMemoryStateStore()
    provisioned = ProvisionedSink(sink)
    options: dict[str, Any] = {"deleted_field": "deleted", "delete_mode": "hard"}
    await StreamSync(source, "items", provisioned, state=state, **options).run()
    await source.write("items", [{"id": 1, "name": "n1", "updated": 5, "deleted": True}])
    report = await StreamSync(source, "items", provisioned, state=state, **options).run()
    assert report.deleted == 1
    assert provisioned.deleted == [1]
    assert [r["id"] for r in await sink_rows(sink, "items")] == [0, 2]


async def test_bad_settings_are_one_config_error_naming_each(pair: Any) -> None:
    source, _sink = pair
    with pytest.raises(ConfigError) as caught:
        StreamSync(
            source,
            "items",
            object(),
            state=InMemoryStateStore(),
            name="a:b",
            batch_size=0,
            delete_mode="hard",
        )
    assert set(caught.value.fields) == {
        "sink",
        "name",
        "batch_size",
        "deleted_field",
        "delete_mode",
    }


async def test_the_file_store_keeps_the_checkpoint_across_runs(pair: Any, tmp_path: Path) -> None:
    source, sink = pair
    await source.write("items", rows(6))
    path = tmp_path / "state.json"
    await StreamSync(source, "items", sink, state=FileStateStore(path), batch_size=4).run()
    await source.write("items", rows(1, start=6))
    report = await StreamSync(source, "items", sink, state=FileStateStore(path)).run()
    assert report.resumed_from == {"cursor": 5, "key": [5]}
    assert report.records == 1


async def test_sync_streams_reports_each_stream(pair: Any) -> None:
    source, sink = pair
    source.create_stream("other", primary_key=("id",), cursor_field="updated")
    await source.write("items", rows(2))
    await source.write("other", rows(3))
    reports = await sync_streams(
        source, sink, {"items": None, "other": "copy"}, state=InMemoryStateStore()
    )
    assert [(r.sink_stream, r.records) for r in reports] == [("items", 2), ("copy", 3)]
    assert len(await sink_rows(sink, "copy")) == 3


class NativeId:
    """A driver's id type (like bson's ObjectId): discovery reports it as a string."""

    def __init__(self, hex_: str) -> None:
        self.hex = hex_

    def __str__(self) -> str:
        return self.hex


async def test_values_of_fields_declared_strings_reach_the_sink_as_text(pair: Any) -> None:
    source, sink = pair
    await source.write("items", [{**r, "name": NativeId(f"ab{r['id']}")} for r in rows(3)])
    catalog = await source.discover()
    declared = catalog.stream("items")
    assert declared.field("name").type is FieldType.UNKNOWN  # the sample's objects: no type

    class DeclaringSource:
        """The same records, with discovery saying `name` is a string (as MongoDB's says
        of an ObjectId `_id`)."""

        async def discover(self) -> Catalog:
            fields = tuple(
                f.model_copy(update={"type": FieldType.STRING}) if f.name == "name" else f
                for f in declared.fields
            )
            return Catalog(streams=(declared.model_copy(update={"fields": fields}),))

        def read(self, stream: str, **options: Any) -> Any:
            return source.read(stream, **options)

        def sample(self, stream: str, **options: Any) -> Any:
            return source.sample(stream, **options)

    await StreamSync(DeclaringSource(), "items", sink, state=InMemoryStateStore()).run()  # type: ignore[arg-type]
    got = await sink_rows(sink, "items")
    assert [r["name"] for r in got] == ["ab0", "ab1", "ab2"]
    assert all(type(r["name"]) is str for r in got)
