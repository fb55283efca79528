"""Run by tests/test_sync_workers.py, several at once, one of them killed with SIGKILL: a
SyncWorker over ten PostgreSQL -> PostgreSQL streams, leased with AdvisoryLeases,
checkpointed in a PostgresStateStore, publishing every record to Kafka by entity, and
logging each run in the table ``run_log``."""

from __future__ import annotations

import asyncio
import sys

from connector_adapters import BatchEvents, KafkaEventPublisher
from connector_core.sync import StreamRun, StreamSync, SyncWorker
from connector_kafka import KafkaConfig, KafkaConnector
from connector_postgres import PostgresConnector, PostgresStateStore

STREAMS = 10


def syncs(pg: PostgresConnector, schema: str, events: BatchEvents) -> list[StreamSync]:
    state = PostgresStateStore(pg, table=f"{schema}.sync_state")
    return [
        StreamSync(pg, f"src{i}", pg, target=f"dst{i}", state=state, batch_size=50,
                   on_batch=events)
        for i in range(STREAMS)
    ]  # fmt: skip


async def main(url: str, schema: str, name: str, bootstrap: str, topic: str, rounds: int) -> None:
    pg = PostgresConnector.from_url(url, schemas=(schema,), application_name=name, timeout=30.0)
    kafka = KafkaConnector(KafkaConfig(bootstrap_servers=bootstrap, request_timeout=10))
    async with pg, kafka, pg.leases(schema, timeout=6) as leases:
        events = BatchEvents(KafkaEventPublisher(kafka, topic), source_system="test")

        async def log(run: StreamRun) -> None:
            assert run.error is None, run.error
            await pg.execute(
                f'INSERT INTO "{schema}".run_log VALUES ($1, $2, $3, $4, $5)',
                run.name, run.round, run.worker, run.started_at, run.finished_at,
            )  # fmt: skip

        worker = SyncWorker(syncs(pg, schema, events), leases, every=1.0, poll=0.1,
                            worker_id=name, on_run=log)  # fmt: skip
        done = await worker.run(until_round=rounds)
        print(done, worker.runs, flush=True)


if __name__ == "__main__":
    url, schema, name, bootstrap, topic, rounds = sys.argv[1:]
    asyncio.run(main(url, schema, name, bootstrap, topic, int(rounds)))
