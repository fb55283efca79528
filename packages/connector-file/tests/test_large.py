"""Large volumes: a million-line NDJSON file and a million-row CSV file streamed in flat
memory (peak RSS growth under 100 MB), every record read once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

MILLION = 1_000_000

# A fresh interpreter, so the baseline is not blurred by memory that making the file (or
# earlier tests) allocated and freed. A thread samples RSS every 5 ms, so a peak inside
# a chunk is seen too.
_STREAM_SCRIPT = """
import asyncio, gc, json, sys, threading
import psutil
from connector_file import FileConfig, FileConnector

async def main() -> None:
    process = psutil.Process()
    async with FileConnector(FileConfig(root=sys.argv[1])) as files:
        async for _ in files.read(sys.argv[2], limit=1):
            pass  # imports and codecs are warm
        gc.collect()
        baseline = peak = process.memory_info().rss
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.wait(0.005):
                peak = max(peak, process.memory_info().rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        count = total = 0
        reader = files.read(sys.argv[2])
        try:
            async for record in reader:
                count += 1
                total += record["n"]
        finally:
            stop.set()
            sampler.join()
        peak = max(peak, process.memory_info().rss)
    issues = reader.issue_count
    print(json.dumps({"count": count, "total": total, "growth": peak - baseline, "issues": issues}))

asyncio.run(main())
"""


def _make(path: Path) -> None:
    with path.open("w") as f:
        if path.suffix == ".csv":
            f.write("id,n,name,at\n")
            for start in range(0, MILLION, 10_000):
                f.write(
                    "".join(
                        f"{i},{i},user-{i},2026-01-01T00:00:{i % 60:02d}+00:00\n"
                        for i in range(start, start + 10_000)
                    )
                )
        else:
            for start in range(0, MILLION, 10_000):
                f.write(
                    "".join(
                        f'{{"id":{i},"n":{i},"name":"user-{i}","at":"2026-01-01T00:00:00Z"}}\n'
                        for i in range(start, start + 10_000)
                    )
                )


@pytest.mark.parametrize("name", ["million.ndjson", "million.csv"])
async def test_a_million_records_stream_in_flat_memory(tmp_path: Path, name: str) -> None:
    _make(tmp_path / name)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _STREAM_SCRIPT,
        str(tmp_path),
        name,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["count"] == MILLION
    assert result["total"] == MILLION * (MILLION - 1) // 2  # every record, once
    assert result["issues"] == 0
    growth_mb = result["growth"] / 2**20
    print(f"{name}: 1,000,000 records streamed; peak RSS growth {growth_mb:.1f} MB")
    assert growth_mb < 100, f"peak RSS grew by {growth_mb:.0f} MB over the stream"
