"""Reads beyond the suites: resumed append-only reads, unterminated last lines, globs in
a stable order, malformed records, gzip, CSV with quoted line breaks."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from connector_core import Checkpoint, FieldType, InvalidRequestError, SerializationError
from connector_file import FileConfig, FileConnector


def _lines(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


async def _all(connector: FileConnector, stream: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [dict(r) async for r in connector.read(stream, **kwargs)]


def _through_json(checkpoint: Checkpoint | None) -> Checkpoint:
    assert checkpoint is not None
    return Checkpoint.model_validate_json(checkpoint.model_dump_json())


@pytest.mark.parametrize("name", ["log.ndjson", "log.csv"])
async def test_a_resumed_read_returns_exactly_the_appended_records(
    files: FileConnector, root: Path, name: str
) -> None:
    first = [{"id": i, "text": f"t{i}"} for i in range(5)]
    assert (await files.write(name, first, mode="append")).ok
    reader = files.read(name)
    assert await _all_from(reader) == first
    saved = _through_json(reader.checkpoint)
    more = [{"id": i, "text": f"t{i}"} for i in range(5, 9)]
    assert (await files.write(name, more, mode="append")).ok
    again = files.read(name, since=saved)
    assert await _all_from(again) == more
    # Nothing new: nothing read, and the checkpoint does not move.
    idle = files.read(name, since=_through_json(again.checkpoint))
    assert await _all_from(idle) == []
    assert _through_json(idle.checkpoint) == _through_json(again.checkpoint)


async def _all_from(reader: Any) -> list[dict[str, Any]]:
    return [dict(r) async for r in reader]


async def test_an_unterminated_last_line_waits_until_it_is_whole(
    files: FileConnector, root: Path
) -> None:
    path = root / "tail.ndjson"
    path.write_text(_lines({"id": 1}) + '{"id": 2, "te')  # an appender mid-write
    reader = files.read("tail.ndjson")
    assert await _all_from(reader) == [{"id": 1}]
    assert reader.issues == []
    with path.open("a") as f:
        f.write('xt": "done"}\n' + _lines({"id": 3}))
    rest = files.read("tail.ndjson", since=_through_json(reader.checkpoint))
    assert await _all_from(rest) == [{"id": 2, "text": "done"}, {"id": 3}]


async def test_a_complete_file_without_a_final_line_break_is_read_whole_when_asked(
    root: Path,
) -> None:
    (root / "a.csv").write_text("id,name\n1,x\n2,y")
    config = FileConfig(root=root, unterminated_last_line="read")
    async with FileConnector(config) as connector:
        assert await _all(connector, "a.csv") == [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}]
    async with FileConnector(FileConfig(root=root)) as holding:
        assert await _all(holding, "a.csv") == [{"id": 1, "name": "x"}]


async def test_a_glob_reads_its_files_in_path_order_and_resumes_per_file(root: Path) -> None:
    (root / "logs").mkdir()
    for name, ids in (("b.ndjson", [3, 4]), ("a.ndjson", [1, 2]), ("c.ndjson.gz", [5])):
        data = _lines(*({"id": i} for i in ids)).encode()
        target = root / "logs" / name
        target.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    (root / "logs" / "notes.txt").write_text("not matched")
    config = FileConfig(root=root, streams={"logs": {"path": "logs/*.ndjson*"}})
    async with FileConnector(config) as connector:
        assert await connector.files("logs") == [
            "logs/a.ndjson",
            "logs/b.ndjson",
            "logs/c.ndjson.gz",
        ]
        reader = connector.read("logs")
        assert [r["id"] async for r in reader] == [1, 2, 3, 4, 5]
        saved = _through_json(reader.checkpoint)
        assert set(saved.cursor) == {"logs/a.ndjson", "logs/b.ndjson", "logs/c.ndjson.gz"}
        with (root / "logs" / "a.ndjson").open("a") as f:
            f.write(_lines({"id": 6}))
        (root / "logs" / "d.ndjson").write_text(_lines({"id": 7}))
        with gzip.open(root / "logs" / "c.ndjson.gz", "ab") as g:  # a second gzip member
            g.write(_lines({"id": 8}).encode())
        assert [r["id"] async for r in connector.read("logs", since=saved)] == [6, 8, 7]


async def test_a_truncated_append_only_file_is_refused_not_reread(
    files: FileConnector, root: Path
) -> None:
    (root / "a.ndjson").write_text(_lines({"id": 1}, {"id": 2}))
    reader = files.read("a.ndjson")
    await _all_from(reader)
    (root / "a.ndjson").write_text(_lines({"id": 9}))
    with pytest.raises(InvalidRequestError, match="truncated or replaced"):
        await _all(files, "a.ndjson", since=reader.checkpoint)


async def test_malformed_records_are_reported_with_file_and_line(
    files: FileConnector, root: Path
) -> None:
    (root / "a.ndjson").write_text('{"id": 1}\nnot json\n[1, 2]\n\n{"id": 2}\n')
    reader = files.read("a.ndjson")
    assert await _all_from(reader) == [{"id": 1}, {"id": 2}]
    assert [(i.path, i.line, i.offset) for i in reader.issues] == [
        ("a.ndjson", 2, 10),
        ("a.ndjson", 3, 19),
    ]
    assert "not valid JSON" in reader.issues[0].message
    assert "not an object" in reader.issues[1].message
    assert reader.issue_count == 2
    (root / "b.csv").write_text("id,name\n1,x\n2,y,extra\n3,z\n")
    csv_reader = files.read("b.csv")
    assert [r["id"] async for r in csv_reader] == [1, 3]
    assert [(i.line, i.message) for i in csv_reader.issues] == [(3, "has 3 fields, the header 2")]


async def test_strict_mode_raises_at_the_first_malformed_record(root: Path) -> None:
    (root / "a.ndjson").write_text('{"id": 1}\nnot json\n{"id": 2}\n')
    async with FileConnector(FileConfig(root=root, strict=True)) as connector:
        reader = connector.read("a.ndjson")
        assert (await anext(reader)) == {"id": 1}  # what comes before is read
        with pytest.raises(SerializationError, match=r"a\.ndjson, line 2 \(byte 10\)"):
            await anext(reader)


@pytest.mark.parametrize("name", ["round.ndjson.gz", "round.csv.gz", "round.json.gz"])
async def test_gzip_round_trip(files: FileConnector, root: Path, name: str) -> None:
    at = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)
    records = [{"id": i, "at": at + dt.timedelta(seconds=i), "name": f"n{i}"} for i in range(50)]
    assert (await files.write(name, records[:30], mode="replace")).ok
    assert (await files.write(name, records[30:], mode="append")).ok
    assert gzip.decompress((root / name).read_bytes())  # really gzip, every member
    assert await _all(files, name) == records
    stream = (await files.discover()).stream(name)
    assert {f.name: f.type for f in stream.fields} == {
        "id": FieldType.INTEGER,
        "at": FieldType.DATETIME,
        "name": FieldType.STRING,
    }


async def test_csv_fields_may_hold_quoted_line_breaks_across_chunks(root: Path) -> None:
    text = "id,note\n" + "".join(f'{i},"line one\nline ""two"" {i}"\n' for i in range(3000))
    (root / "notes.csv").write_text(text)
    async with FileConnector(FileConfig(root=root, chunk_size=4096)) as connector:
        reader = connector.read("notes.csv", limit=2000)
        rows = await _all_from(reader)
        assert len(rows) == 2000
        assert rows[1234] == {"id": 1234, "note": 'line one\nline "two" 1234'}
        rest = await _all(connector, "notes.csv", since=_through_json(reader.checkpoint))
        assert [r["id"] for r in rest] == list(range(2000, 3000))


async def test_schema_hints_win_over_inference(root: Path) -> None:
    (root / "a.csv").write_text("code,amount\n007,1.50\n042,2\n")
    config = FileConfig(root=root, schema_hints={"amount": "decimal"})
    async with FileConnector(config) as connector:
        rows = await _all(connector, "a.csv")
    from decimal import Decimal

    assert rows == [
        {"code": "007", "amount": Decimal("1.50")},  # leading zeros: inferred as text
        {"code": "042", "amount": Decimal("2")},
    ]


def _open_fds_on(path: Path) -> int:
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            if fd.readlink() == path:
                count += 1
        except OSError:  # closed since the listing
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc/self/fd")
async def test_a_limited_read_has_closed_its_file_when_it_returns(
    files: FileConnector, root: Path
) -> None:
    # sample() stops after n records: the file is closed before it returns, not later
    # by the loop's async-generator finalizer (which a full run once saw run after the
    # file object was collected: an unraisable ResourceWarning).
    assert (await files.write("many.ndjson", [{"id": i} for i in range(500)])).ok
    real = (root / "many.ndjson").resolve()
    assert [dict(r) for r in await files.sample("many.ndjson", 3)] == [{"id": i} for i in range(3)]
    assert _open_fds_on(real) == 0
