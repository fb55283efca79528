"""Writes beyond the suites: upserts keep the other records, appends refuse unknown CSV
columns, a record given twice, unterminated files, JSON arrays appended to, discovery of
configured globs; ensure_stream's key for a sync's sink, and a resumed sync."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from connector_core import (
    FieldType,
    InvalidRequestError,
    SchemaChange,
    SerializationError,
    Stream,
    StreamField,
)
from connector_core.sync import StreamSync
from connector_file import FileConfig, FileConnector, FileStream
from connector_testing import CrashingStateStore, MemoryConfig, MemoryConnector, SimulatedCrashError


async def _all(connector: FileConnector, stream: str) -> list[dict[str, Any]]:
    return [dict(r) async for r in connector.read(stream)]


@pytest.mark.parametrize("name", ["u.ndjson", "u.csv", "u.json"])
async def test_an_upsert_keeps_the_records_whose_key_it_does_not_hold(
    root: Path, name: str
) -> None:
    async with FileConnector(FileConfig(root=root, primary_key=("id",))) as files:
        assert (await files.write(name, [{"id": i, "v": i} for i in range(4)])).ok
        result = await files.write(
            name, [{"id": 2, "v": 20}, {"id": 9, "v": 90}, {"id": 2, "v": 21}]
        )
        assert (result.written, result.failed) == (3, 0)
        rows = sorted(await _all(files, name), key=lambda r: r["id"])
    assert rows == [
        {"id": 0, "v": 0},
        {"id": 1, "v": 1},
        {"id": 2, "v": 21},  # the last one given wins
        {"id": 3, "v": 3},
        {"id": 9, "v": 90},
    ]


async def test_an_upsert_over_an_unreadable_file_changes_nothing(root: Path) -> None:
    (root / "u.ndjson").write_text('{"id": 1}\nnot json\n')
    before = (root / "u.ndjson").read_bytes()
    async with FileConnector(FileConfig(root=root, primary_key=("id",))) as files:
        with pytest.raises(SerializationError, match="line 2"):
            await files.write("u.ndjson", [{"id": 1, "v": 2}])
    assert (root / "u.ndjson").read_bytes() == before
    assert [p.name for p in root.iterdir()] == ["u.ndjson"]


async def test_an_append_refuses_fields_that_are_no_csv_column(files: FileConnector) -> None:
    assert (await files.write("a.csv", [{"id": 1, "name": "x"}], mode="append")).ok
    result = await files.write(
        "a.csv", [{"id": 2, "name": "y"}, {"id": 3, "colour": "red"}], mode="append"
    )
    assert (result.written, result.failed) == (1, 1)
    assert result.errors[0].index == 1
    assert "not columns of the file" in result.errors[0].message
    assert await _all(files, "a.csv") == [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}]


async def test_an_append_to_an_unterminated_file_starts_on_a_line_of_its_own(
    files: FileConnector, root: Path
) -> None:
    (root / "a.ndjson").write_text('{"id": 1}')
    assert (await files.write("a.ndjson", [{"id": 2}], mode="append")).ok
    assert (root / "a.ndjson").read_text() == '{"id": 1}\n{"id":2}\n'


async def test_a_json_array_is_appended_to_by_rewriting_it(
    files: FileConnector, root: Path
) -> None:
    assert (await files.write("a.json", [{"id": 1}], mode="append")).ok
    assert (await files.write("a.json", [{"id": 2}], mode="append")).ok
    assert json.loads((root / "a.json").read_text()) == [{"id": 1}, {"id": 2}]
    reader = files.read("a.json", limit=1)
    assert [r async for r in reader] == [{"id": 1}]
    assert [r async for r in files.read("a.json", since=reader.checkpoint)] == [{"id": 2}]


async def test_a_glob_stream_is_not_written_to(root: Path) -> None:
    config = FileConfig(root=root, streams={"all": {"path": "*.ndjson"}})
    async with FileConnector(config) as files:
        with pytest.raises(InvalidRequestError, match="glob"):
            await files.write("all", [{"id": 1}])


async def test_discover_lists_configured_globs_and_the_files(root: Path) -> None:
    (root / "logs").mkdir()
    (root / "logs" / "a.ndjson").write_text('{"id": 1, "at": "2026-01-01T00:00:00Z"}\n')
    (root / "logs" / "b.ndjson").write_text('{"id": 2, "at": null}\n')
    (root / "notes.txt").write_text("no format")
    config = FileConfig(
        root=root,
        streams={"logs": {"path": "logs/*.ndjson", "primary_key": ["id"]}},
        cursor_field="at",
    )
    async with FileConnector(config) as files:
        catalog = await files.discover()
    assert catalog.names == ("logs", "logs/a.ndjson", "logs/b.ndjson")
    logs = catalog.stream("logs")
    assert isinstance(logs, FileStream)
    assert (logs.kind, logs.path, logs.files, logs.sampled) == ("glob", "logs/*.ndjson", 2, 2)
    assert logs.primary_key == ("id",)
    assert logs.field("at").nullable
    assert catalog.stream("logs/a.ndjson").primary_key == ()  # no default key given


def _keyed_stream(*key: str) -> Stream:
    fields = (
        StreamField(name="id", type=FieldType.INTEGER),
        StreamField(name="v", type=FieldType.STRING),
    )
    return Stream(name="s", fields=fields, primary_key=key)


@pytest.mark.parametrize("name", ["k.ndjson", "k.csv"])
async def test_ensure_stream_gives_a_keyless_stream_the_key_writes_upsert_on(
    files: FileConnector, name: str
) -> None:
    assert await files.ensure_stream(name, _keyed_stream("id")) == SchemaChange()
    assert not (files.root / name).exists()  # the file comes with the first batch
    batch = [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]
    assert (await files.write(name, batch)).ok
    assert (await files.write(name, [{"id": 2, "v": "c"}, {"id": 3, "v": "d"}])).ok
    assert sorted(await _all(files, name), key=lambda r: r["id"]) == [
        {"id": 1, "v": "a"},
        {"id": 2, "v": "c"},
        {"id": 3, "v": "d"},
    ]
    await files.ensure_stream(name, _keyed_stream())  # no key: appends again
    assert (await files.write(name, [{"id": 3, "v": "e"}])).ok
    assert [r["v"] for r in await _all(files, name)][-2:] == ["d", "e"]


async def test_ensure_stream_leaves_a_configured_key_and_mode_alone(root: Path) -> None:
    config = FileConfig(root=root, streams={"log": {"path": "log.ndjson", "write_mode": "append"}})
    async with FileConnector(config) as files:
        await files.ensure_stream("log", _keyed_stream("id"))
        assert (await files.write("log", [{"id": 1, "v": 1}])).ok
        assert (await files.write("log", [{"id": 1, "v": 2}])).ok
        assert [r["v"] for r in await _all(files, "log")] == [1, 2]
    config = FileConfig(root=root, primary_key=("v",))
    async with FileConnector(config) as files:
        await files.ensure_stream("u.ndjson", _keyed_stream("id"))
        assert (await files.write("u.ndjson", [{"id": 1, "v": 1}, {"id": 2, "v": 1}])).ok
        assert await _all(files, "u.ndjson") == [{"id": 2, "v": 1}]  # upserted on v


async def test_ensure_stream_refuses_what_cannot_be_a_sink(root: Path) -> None:
    config = FileConfig(root=root, streams={"all": {"path": "*.ndjson"}})
    async with FileConnector(config) as files:
        with pytest.raises(InvalidRequestError, match="glob"):
            await files.ensure_stream("all", _keyed_stream("id"))
        with pytest.raises(InvalidRequestError, match="format"):
            await files.ensure_stream("notes.txt", _keyed_stream("id"))
        with pytest.raises(InvalidRequestError):
            await files.ensure_stream("../out.ndjson", _keyed_stream("id"))


async def test_a_resumed_sync_into_a_file_leaves_each_record_once(files: FileConnector) -> None:
    source = MemoryConnector(MemoryConfig(store=f"src-{uuid.uuid4().hex}"))
    async with source:
        source.create_stream("items", primary_key=("id",))
        rows = [{"id": i, "name": f"n{i}"} for i in range(25)]
        await source.write("items", rows)
        state = CrashingStateStore(fail_at=2)
        options: dict[str, Any] = {"target": "items.ndjson", "state": state, "batch_size": 10}
        with pytest.raises(SimulatedCrashError):
            await StreamSync(source, "items", files, **options).run()
        assert len(await _all(files, "items.ndjson")) == 20  # batch 2 is in the file
        state.fail_at = None
        report = await StreamSync(source, "items", files, **options).run()
    assert report.records == 15  # batch 2 again, then the rest
    assert sorted(await _all(files, "items.ndjson"), key=lambda r: r["id"]) == rows
