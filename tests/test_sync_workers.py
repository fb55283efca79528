"""Three SyncWorker processes over ten streams (PostgreSQL -> PostgreSQL, events to
Kafka), one killed with SIGKILL mid-run: every stream runs once per round, never in two
workers at once (run log and pg_locks), the killed worker's stream finishes on the others,
and every record ends in its sink exactly once with at least one event keyed by it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sync_workers_worker import STREAMS, syncs

from connector_adapters import BatchEvents, DomainEvent, KafkaEventPublisher
from connector_core.sync import SyncWorker
from connector_kafka import BytesSerializer, KafkaConfig, KafkaConnector
from connector_postgres import PostgresConnector, lease_key, state_table_ddl

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("sync_workers_worker.py")

ROUNDS = 5
ROWS = 1_000  # per stream at the start; more arrive while the workers run
NAMES = [f"src{i}->dst{i}" for i in range(STREAMS)]


@pytest.fixture
def pg(pg_in_fresh_schema: PostgresConnector) -> PostgresConnector:
    return pg_in_fresh_schema


@pytest.fixture
async def kafka(kafka_bootstrap: str, unique_topic: str) -> AsyncIterator[KafkaConnector]:
    config = KafkaConfig(bootstrap_servers=kafka_bootstrap, request_timeout=10)
    async with KafkaConnector(config) as connector:
        await connector.create_topic(unique_topic, partitions=3)
        yield connector
        await connector.delete_topic(unique_topic)


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


async def locks(pg: PostgresConnector, prefix: str) -> list[tuple[int, int, str]]:
    """(lease key, pid, application name) of the advisory locks our workers hold."""
    rows = await pg.query(
        "SELECT l.classid::bigint AS hi, l.objid::bigint AS lo, l.pid, a.application_name "
        "FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE $1",
        f"{prefix}%",
    )
    out = []
    for row in rows:
        key = int.from_bytes(((row["hi"] << 32) | row["lo"]).to_bytes(8, "big"), "big", signed=True)
        out.append((key, row["pid"], row["application_name"]))
    return out


async def test_three_workers_share_ten_streams_and_survive_a_kill(
    pg: PostgresConnector, kafka: KafkaConnector, postgres_url: str, kafka_bootstrap: str,
    unique_topic: str,
) -> None:  # fmt: skip
    schema = pg.config.schemas[0]
    prefix = f"w{uuid.uuid4().hex[:6]}-"
    names = [f"{prefix}{i}" for i in range(3)]
    keys = {lease_key(schema, n): n for n in NAMES}
    for i in range(STREAMS):
        await pg.execute(f'CREATE TABLE "{schema}".src{i} (id bigint PRIMARY KEY, v text)')
        await pg.copy_in(f"{schema}.src{i}", [(n, f"{i}-{n}") for n in range(ROWS)])
    await pg.execute(state_table_ddl(f"{schema}.sync_state"))
    await pg.execute(
        f'CREATE TABLE "{schema}".run_log (name text, round int, worker text, '
        "started_at timestamptz, finished_at timestamptz)"
    )
    workers = {
        name: start([postgres_url, schema, name, kafka_bootstrap, unique_topic, str(ROUNDS)])
        for name in names
    }
    victim = names[0]
    holders_seen: list[dict[int, set[int]]] = []
    next_id = ROWS

    async def insert_more() -> None:  # new rows all the time: every round has work
        nonlocal next_id
        while True:
            for i in range(STREAMS):
                await pg.copy_in(
                    f"{schema}.src{i}", [(n, f"{i}-{n}") for n in range(next_id, next_id + 30)]
                )
            next_id += 30
            await asyncio.sleep(0.1)

    async def sample_locks() -> None:
        while True:
            held: dict[int, set[int]] = defaultdict(set)
            for key, pid, _ in await locks(pg, prefix):
                held[key].add(pid)
            holders_seen.append(held)
            await asyncio.sleep(0.05)

    feeder = asyncio.ensure_future(insert_more())
    sampler = asyncio.ensure_future(sample_locks())
    try:
        # Kill the victim mid-round, mid-run: after a run of round 2 or later, while it
        # holds a stream's lease.
        killed_holding: str | None = None
        for _ in range(1200):
            done_by_victim = await pg.query_value(
                f'SELECT max(round) FROM "{schema}".run_log WHERE worker = $1', victim
            )  # fmt: skip
            held = [key for key, _, app in await locks(pg, prefix) if app == victim]
            if done_by_victim and done_by_victim >= 2 and held:
                workers[victim].send_signal(signal.SIGKILL)
                killed_holding = keys[held[0]]
                break
            assert workers[victim].poll() is None, workers[victim].communicate()
            await asyncio.sleep(0.01)
        assert killed_holding is not None, "the victim never held a lease mid-round"
        killed_in = await pg.query_value(
            f"SELECT coalesce((value->>'round')::int, 0) + 1 FROM \"{schema}\".sync_state "
            "WHERE key = $1",
            f"{killed_holding}:round",
        )
        workers[victim].communicate(timeout=30)
        for name in names[1:]:
            out, err = await asyncio.to_thread(workers[name].communicate, timeout=120)
            assert workers[name].returncode == 0, err
            assert out.split()[0] == str(ROUNDS)
    finally:
        for task in (feeder, sampler):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for process in workers.values():
            if process.poll() is None:
                process.kill()
                process.communicate()

    runs = await pg.query(f'SELECT * FROM "{schema}".run_log ORDER BY started_at')
    per_round = Counter((r["name"], r["round"]) for r in runs)
    by_survivors = Counter((r["name"], r["round"]) for r in runs if r["worker"] != victim)
    by_victim = Counter((r["name"], r["round"]) for r in runs if r["worker"] == victim)
    # Every stream ran in every round; nobody ran one twice in a round; the only run done
    # twice is the one the victim was in when it died (if it died after logging it).
    assert set(per_round) == {(n, k) for n in NAMES for k in range(1, ROUNDS + 1)}
    assert set(by_survivors.values()) == {1}
    assert set(by_victim.values()) == {1}
    assert {key for key, count in per_round.items() if count > 1} <= {(killed_holding, killed_in)}
    # The victim's stream finished on another worker in the round it died in, and the
    # victim did nothing after its death.
    assert (killed_holding, killed_in) in by_survivors or by_victim[(killed_holding, killed_in)]
    assert all(k <= killed_in for _, k in by_victim)
    assert {r["worker"] for r in runs} == set(names)  # the streams were shared
    # One stream, one runner at a time: its runs never overlap ...
    for name in NAMES:
        mine = [r for r in runs if r["name"] == name]
        for before, after in itertools.pairwise(mine):
            assert before["finished_at"] <= after["started_at"], (name, before, after)
    # ... and no lease ever had two holders, while the workers did take them.
    assert all(len(pids) == 1 for held in holders_seen for pids in held.values())
    # (Besides the leases, a worker may be seen holding the state store's setup lock,
    # a transaction-level lock of the table's name taken once at start.)
    setup_lock = lease_key("state-table", f"{schema}.sync_state")
    assert {key for held in holders_seen for key in held} - {setup_lock} <= set(keys)
    assert sum(len(held) for held in holders_seen) > 0

    # A last pass (no new rows now) brings over what arrived after the workers' last round.
    async with pg.leases(schema, timeout=6) as leases:
        events = BatchEvents(KafkaEventPublisher(kafka, unique_topic), source_system="test")
        await SyncWorker(syncs(pg, schema, events), leases, every=0).run(until_round=ROUNDS + 1)
    for i in range(STREAMS):
        source = await pg.query(f'SELECT id, v FROM "{schema}".src{i} ORDER BY id')
        sink = await pg.query(f'SELECT id, v FROM "{schema}".dst{i} ORDER BY id')
        assert [tuple(r) for r in sink] == [tuple(r) for r in source]  # each exactly once
        assert len(source) == next_id

    raw = BytesSerializer()
    seen: set[tuple[str, str]] = set()
    partition_of: dict[bytes, int] = {}
    async for message in kafka.read_messages(
        unique_topic, key_serializer=raw, value_serializer=raw
    ):
        event = DomainEvent.model_validate_json(message.value or b"")
        assert message.key == event.entity_id.encode()
        assert partition_of.setdefault(message.key, message.partition) == message.partition
        seen.add((event.entity_type, event.entity_id))
    # At least once: every record of every stream has its event.
    assert seen == {(f"dst{i}", str(n)) for i in range(STREAMS) for n in range(next_id)}
