"""Large volumes: a million-document streamed find in flat memory, and a 100,000-operation
unordered bulk write whose duplicate keys are reported exactly."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
from pymongo import InsertOne

from connector_core import ErrorCode
from connector_mongo import MongoConnector

pytestmark = pytest.mark.integration

MILLION = 1_000_000
# insert_many in chunks this big: the fast way in (FerretDB on SQLite takes ~50k docs/s).
LOAD_CHUNK = 50_000


def _document(i: int) -> dict[str, Any]:
    # 91 bytes of BSON each; a million of them decoded and held take ~480 MB.
    return {"_id": i, "n": i, "pad": f"{i:010d}" * 6}


# Run in a fresh interpreter so the baseline is not blurred by memory that the load (or
# earlier tests) allocated and freed: the allocator may hand it back to this stream,
# hiding growth. A thread samples RSS every 5 ms, so a peak inside a batch is seen too.
_STREAM_SCRIPT = """
import asyncio, gc, json, os, sys, threading
import psutil
from connector_mongo import MongoConfig, MongoConnector

async def main() -> None:
    config = MongoConfig.from_url(
        os.environ["STREAM_TEST_URL"], database=os.environ["STREAM_TEST_DATABASE"]
    )
    process = psutil.Process()
    collection = sys.argv[1]
    async with MongoConnector(config) as mongo:
        async for _ in mongo.find(collection, {}, limit=1):
            pass  # imports, codecs and a pooled connection are warm
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
        try:
            async for document in mongo.find(collection, {}, batch_size=int(sys.argv[2])):
                count += 1
                total += document["n"]
        finally:
            stop.set()
            sampler.join()
        peak = max(peak, process.memory_info().rss)
    print(json.dumps({"count": count, "total": total, "growth": peak - baseline}))

asyncio.run(main())
"""


async def test_a_million_document_find_streams_in_flat_memory(
    mongo: MongoConnector, collection: str, mongo_url: str
) -> None:
    for start in range(0, MILLION, LOAD_CHUNK):
        loaded = await mongo.insert_many(
            collection, [_document(i) for i in range(start, start + LOAD_CHUNK)]
        )
        assert (loaded.written, loaded.failed) == (LOAD_CHUNK, 0)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _STREAM_SCRIPT,
        collection,
        "10000",
        env={
            **os.environ,
            "STREAM_TEST_URL": mongo_url,
            "STREAM_TEST_DATABASE": mongo.config.database,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["count"] == MILLION
    assert result["total"] == MILLION * (MILLION - 1) // 2  # every document, once
    growth_mb = result["growth"] / 2**20
    print(f"1,000,000 documents streamed; peak RSS growth {growth_mb:.1f} MB")  # -s shows it
    assert growth_mb < 100, f"peak RSS grew by {growth_mb:.0f} MB over the stream"


BULK = 100_000
# Operation index -> the _id of an earlier operation it repeats (next to each other, far
# apart, near both ends), and the _ids stored before the bulk write (their operations
# fail too).
REPEATS = {2: 1, 3: 1, 1_000: 999, 50_000: 49_998, 77_777: 12, 99_998: 5}
STORED_BEFORE = (0, 49_999, BULK - 1)


async def test_an_unordered_bulk_write_reports_exactly_its_duplicate_keys(
    mongo: MongoConnector, collection: str
) -> None:
    stored = await mongo.insert_many(
        collection, [{"_id": i, "op": "stored"} for i in STORED_BEFORE]
    )
    assert stored.written == len(STORED_BEFORE)
    operations = [InsertOne({"_id": REPEATS.get(i, i), "op": i}) for i in range(BULK)]
    duplicates = {i: REPEATS.get(i, i) for i in (*REPEATS, *STORED_BEFORE)}

    result = await mongo.bulk_write(collection, operations, ordered=False)

    assert not result.ok
    assert [e.index for e in result.errors] == sorted(duplicates)
    assert (result.written, result.failed) == (BULK - len(duplicates), len(duplicates))
    assert result.inserted == BULK - len(duplicates)
    for error in result.errors:
        assert error.code is ErrorCode.CONFLICT, error
        assert error.key == duplicates[error.index], error
    # Nothing else was dropped, and no duplicate overwrote the document it collided with.
    assert await mongo.count(collection) == BULK - len(REPEATS)
    for key in sorted(set(REPEATS.values())):  # by _id: FerretDB scans for anything else
        assert await mongo.find_one(collection, {"_id": key}) == {"_id": key, "op": key}
    for key in STORED_BEFORE:
        assert await mongo.find_one(collection, {"_id": key}) == {"_id": key, "op": "stored"}
