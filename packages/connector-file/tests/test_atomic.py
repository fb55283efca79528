"""Interrupted writes leave the old file or the new one, never a mix: a cancelled task,
and a process killed with SIGKILL in the middle of a replace."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from connector_file import FileConfig, FileConnector

COUNT = 20_000


def _records(tag: str) -> list[dict[str, Any]]:
    return [{"id": i, "tag": tag, "pad": "x" * 40} for i in range(COUNT)]


async def _contents_after_a_full_write(root: Path, name: str, tag: str, mode: str) -> bytes:
    async with FileConnector(FileConfig(root=root, fsync=False)) as connector:
        assert (await connector.write(name, _records(tag), mode=mode)).ok  # type: ignore[arg-type]
    return (root / name).read_bytes()


def _temporaries(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", ["data.ndjson", "data.csv", "data.json", "data.ndjson.gz"])
async def test_a_cancelled_replace_leaves_the_old_file_or_the_new_one(
    tmp_path: Path, name: str
) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    old = await _contents_after_a_full_write(reference, name, "old", "replace")
    new = await _contents_after_a_full_write(reference, "new-" + name, "new", "replace")
    root = tmp_path / "root"
    root.mkdir()
    outcomes = set()
    async with FileConnector(FileConfig(root=root)) as connector:
        # Cancelled after more and more steps of the event loop: before the temporary
        # file exists, while it is written, around the rename.
        for steps in (0, 1, 3, 10, 30, 100, 300, 1000, 3000):
            (root / name).write_bytes(old)
            task = asyncio.create_task(connector.write(name, _records("new"), mode="replace"))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            try:
                result = await task
            except asyncio.CancelledError:
                pass
            else:
                assert result.ok
            found = (root / name).read_bytes()
            assert found in (old, new), f"a mix after {steps} steps ({len(found)} bytes)"
            assert _temporaries(root) == [], "the temporary file is left behind"
            outcomes.add("old" if found == old else "new")
    assert "old" in outcomes, "no cancellation landed before the rename"


async def test_a_cancelled_append_appends_the_whole_batch_or_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    async with FileConnector(FileConfig(root=root)) as connector:
        assert (await connector.write("log.ndjson", _records("old")[:10], mode="append")).ok
        old = (root / "log.ndjson").read_bytes()
        cut_back = 0
        for steps in (0, 1, 3, 10, 30, 100, 300, 1000):
            (root / "log.ndjson").write_bytes(old)
            task = asyncio.create_task(
                connector.write("log.ndjson", _records("new"), mode="append")
            )
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
                whole = True
            except asyncio.CancelledError:
                whole = False
            found = (root / "log.ndjson").read_bytes()
            if whole:
                assert found.startswith(old)
                assert found.count(b"\n") == 10 + COUNT
            else:
                cut_back += found == old
                assert found == old, f"part of a cancelled batch stayed after {steps} steps"
        assert cut_back, "no cancellation landed while appending"


_WRITER = """
import asyncio, sys
from connector_file import FileConfig, FileConnector

async def main() -> None:
    async with FileConnector(FileConfig(root=sys.argv[1])) as connector:
        tag = 0
        while True:  # replace, again and again, until killed
            records = [{"id": i, "tag": tag % 2, "pad": "x" * 40} for i in range(int(sys.argv[3]))]
            result = await connector.write(sys.argv[2], records, mode="replace")
            assert result.ok
            print("wrote", tag, flush=True)
            tag += 1

asyncio.run(main())
"""


async def test_a_process_killed_mid_replace_leaves_one_whole_version(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    versions = set()
    async with FileConnector(FileConfig(root=reference, fsync=False)) as connector:
        for tag in (0, 1):
            records = [{"id": i, "tag": tag, "pad": "x" * 40} for i in range(COUNT)]
            assert (await connector.write(f"v{tag}.ndjson", records, mode="replace")).ok
            versions.add((reference / f"v{tag}.ndjson").read_bytes())
    root = tmp_path / "root"
    root.mkdir()
    target = root / "data.ndjson"
    mid_write = 0
    for attempt in range(4):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WRITER,
            str(root),
            "data.ndjson",
            str(COUNT),
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        for _ in range(attempt + 1):  # some whole replaces first
            await asyncio.wait_for(process.stdout.readline(), 60)
        # Then kill it while its temporary file exists: in the middle of a replace.
        async with asyncio.timeout(60):  # a replace that writes no temporary file fails
            while not _temporaries(root):
                await asyncio.sleep(0.001)
        mid_write += 1
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
        assert process.returncode == -signal.SIGKILL
        assert target.read_bytes() in versions, "the file is neither version"
        for leftover in _temporaries(root):  # what a killed writer leaves: never read
            (root / leftover).unlink()
    assert mid_write == 4
