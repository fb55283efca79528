"""Run by tests/test_sync_kill.py in a subprocess that it kills with SIGKILL: one
PostgreSQL -> PostgreSQL StreamSync with its checkpoints in a PostgresStateStore."""

from __future__ import annotations

import asyncio
import sys

from connector_core.sync import StreamSync
from connector_postgres import PostgresConnector, PostgresStateStore


async def main(url: str, schema: str) -> None:
    async with PostgresConnector.from_url(url, schemas=(schema,), timeout=60.0) as pg:
        state = PostgresStateStore(pg, table=f"{schema}.sync_state")
        sync = StreamSync(pg, "items", pg, target="copy", state=state, batch_size=500)
        report = await sync.run()
        print(report.records, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
