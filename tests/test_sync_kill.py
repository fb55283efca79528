"""A sync killed with SIGKILL at random points, 20 times, and run again each time ends
with every record in the sink exactly once and equal to the source's."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector_postgres import PostgresConnector, state_table_ddl

pytestmark = pytest.mark.integration

ROWS = 300_000
MORE = 20_000
WORKER = Path(__file__).with_name("sync_kill_worker.py")


@pytest.fixture
def pg(pg_in_fresh_schema: PostgresConnector) -> PostgresConnector:
    return pg_in_fresh_schema


def start(url: str, schema: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, schema],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


async def test_killed_twenty_times_every_record_exactly_once(
    pg: PostgresConnector, postgres_url: str
) -> None:
    schema = pg.config.schemas[0]
    await pg.execute(
        f'CREATE TABLE "{schema}".items (id bigint PRIMARY KEY, name text NOT NULL, n bigint)'
    )
    await pg.copy_in(f"{schema}.items", [(i, f"name {i}", i * 7) for i in range(ROWS)])
    await pg.execute(state_table_ddl(f"{schema}.sync_state"))
    rng = random.Random(18)
    killed = 0
    checkpoints = []
    total = ROWS
    query = (
        f"SELECT value->'position'->'key'->>0 FROM \"{schema}\".sync_state "
        "WHERE key = 'items->copy:checkpoint'"
    )
    for _ in range(20):
        # New rows every round, so a run always has work left whatever the machine's speed.
        more = [(i, f"name {i}", i * 7) for i in range(total, total + MORE)]
        await pg.copy_in(f"{schema}.items", more)
        total += MORE
        before = await pg.query_value(query)
        process = start(postgres_url, schema)
        # Kill once the run has committed a batch (the checkpoint moved), at a random point
        # after it: mid-run, not before the first write nor (mostly) after the last.
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if await pg.query_value(query) != before:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.communicate(timeout=60)
        checkpoints.append(await pg.query_value(query))
    final = start(postgres_url, schema)
    _out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    assert killed >= 10  # most runs were killed mid-way, not after they finished
    seen = [int(c) for c in checkpoints if c is not None]
    assert seen == sorted(seen)  # checkpoints only move forward
    rows = await pg.query(f'SELECT id, name, n FROM "{schema}".copy ORDER BY id')
    assert [tuple(r) for r in rows] == [(i, f"name {i}", i * 7) for i in range(total)]
