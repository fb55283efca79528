"""Chatwoot contact sync: sync_contacts (ManagedChatwoot -> PostgresConnector) versus raw
httpx + asyncpg doing the same work.

A local fake Chatwoot (Starlette under uvicorn, in a thread; no contract validation, so
the server costs the same for both) serves N contacts, 15 per page. Each round syncs all
of them into a fresh table: the connector path is ``sync_contacts`` with ManagedChatwoot
(rate limits raised so they do not dominate), PostgresConnector upserts, an in-memory
event publisher and a fresh InMemoryStateStore (so every contact is written, with events
and checkpoints); the raw path pages with httpx and upserts each page with asyncpg's
``executemany``. Rounds are interleaved with the order rotated; medians and the ratio
connector / raw are printed.

    uv run --no-sync python benchmarks/chatwoot_sync.py [--quick] [--contacts N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector_adapters import InMemoryEventPublisher, InMemoryStateStore
from connector_adapters.chatwoot import (
    ChatwootConfig,
    ChatwootContact,
    ManagedChatwoot,
    MockChatwoot,
    contact_row,
    contacts_table_ddl,
    sync_contacts,
)
from connector_postgres import PostgresConnector
from connector_testing._services import ServiceResolver

TOKEN = "bench-token"


def fake_app(mock: MockChatwoot) -> Starlette:
    pages: dict[int, bytes] = {}

    async def contacts(request: Request) -> Response:
        page = int(request.query_params.get("page", "1"))
        if page not in pages:
            result = await mock.list_contacts(page=page, sort=request.query_params.get("sort"))
            body = {
                "meta": {"count": result.count, "current_page": str(page)},
                "payload": [c.model_dump(mode="json") for c in result.contacts],
            }
            pages[page] = json.dumps(body).encode()
        return Response(pages[page], media_type="application/json")

    async def profile(request: Request) -> JSONResponse:
        return JSONResponse({"id": 1})

    return Starlette(
        routes=[
            Route("/api/v1/accounts/1/contacts", contacts),
            Route("/api/v1/profile", profile),
        ]
    )


class Server:
    def __init__(self, app: Starlette) -> None:
        self.sock = socket.socket()
        # Inherited by accepted sockets; without it Nagle + delayed ACK add ~40 ms a response.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


async def connector_round(chatwoot: ManagedChatwoot, pg: PostgresConnector, n: int) -> float:
    table = f"bench_{uuid.uuid4().hex[:10]}"
    await pg.execute(contacts_table_ddl(table))
    publisher = InMemoryEventPublisher()
    started = time.perf_counter()
    report = await sync_contacts(
        chatwoot, pg, publisher=publisher, state=InMemoryStateStore(), table=table, account_id=1
    )
    elapsed = time.perf_counter() - started
    assert report.written == n, report
    assert len(publisher.events) == n
    await pg.execute(f'DROP TABLE "{table}"')
    return elapsed


async def raw_round(url: str, pg_url: str, n: int) -> float:
    table = f"bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg_url)
    await conn.execute(contacts_table_ddl(table))
    columns = [*contact_row_columns(), "synced_at"]
    col_sql = ", ".join(f'"{c}"' for c in columns)
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns[1:])
    sql = (
        f'INSERT INTO "{table}" ({col_sql}) VALUES ({params}) '
        f'ON CONFLICT ("chatwoot_id") DO UPDATE SET {updates}'
    )
    written = 0
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, headers={"api_access_token": TOKEN}) as client:
        page = 1
        while True:
            response = await client.get(
                "/api/v1/accounts/1/contacts", params={"page": page, "sort": "email"}
            )
            response.raise_for_status()
            payload = response.json()["payload"]
            if not payload:
                break
            now = time.time()
            rows = []
            for item in payload:
                row = contact_row(ChatwootContact.model_validate(item), account_id=1)
                row["additional_attributes"] = json.dumps(row["additional_attributes"])
                row["custom_attributes"] = json.dumps(row["custom_attributes"])
                rows.append([*row.values(), _ts(now)])
            await conn.executemany(sql, rows)
            written += len(rows)
            page += 1
    elapsed = time.perf_counter() - started
    assert written == n
    await conn.execute(f'DROP TABLE "{table}"')
    await conn.close()
    return elapsed


def _ts(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def contact_row_columns() -> list[str]:
    return list(contact_row(ChatwootContact(id=1)).keys())


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--contacts", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    n = args.contacts or (150 if args.quick else 1000)
    rounds = args.rounds or (2 if args.quick else 5)
    pg_url = ServiceResolver([Path.cwd()]).lookup("CONNECTOR_TEST_POSTGRES_URL")
    if not pg_url:
        raise SystemExit("set CONNECTOR_TEST_POSTGRES_URL or run scripts/services up")
    mock = MockChatwoot()
    mock.seed_contacts(n)
    with Server(fake_app(mock)) as server:
        config = ChatwootConfig(
            base_url=server.url, account_id=1, api_access_token=TOKEN,
            requests_per_minute=6_000_000, burst=1000,
        )  # fmt: skip
        async with ManagedChatwoot(config) as chatwoot, PostgresConnector.from_url(pg_url) as pg:
            await connector_round(chatwoot, pg, n)  # warm up both paths
            await raw_round(server.url, pg_url, n)
            timings: dict[str, list[float]] = {"raw httpx+asyncpg": [], "sync_contacts": []}
            for r in range(rounds):
                order = list(timings) if r % 2 == 0 else list(reversed(timings))
                for name in order:
                    if name == "sync_contacts":
                        timings[name].append(await connector_round(chatwoot, pg, n))
                    else:
                        timings[name].append(await raw_round(server.url, pg_url, n))
    print(f"{n} contacts ({(n + 14) // 15} pages), {rounds} rounds, medians:")
    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name, value in medians.items():
        print(f"  {name:22s} {value * 1000:8.1f} ms  ({n / value:8.0f} contacts/s)")
    ratio = medians["sync_contacts"] / medians["raw httpx+asyncpg"]
    print(f"  ratio sync_contacts / raw: {ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
