"""The main job end to end, on this machine: an integration synced into PostgreSQL, with
events. `make demo` runs it (after `make sync` and `scripts/services up postgres`).

    uv run python examples/demo.py                       # Chatwoot (mock, over HTTP) -> PostgreSQL
    uv run python examples/demo.py --integration salesforce   # Salesforce (mock) -> PostgreSQL
    uv run python examples/demo.py --contacts 100        # a smaller data set

Chatwoot: a mock Chatwoot (MockChatwootServer) serves a realistic account (contacts with
conversations and messages) over real HTTP on 127.0.0.1; the managed client
(ManagedChatwoot, on connector-http) reads it as it would read app.chatwoot.com; the
contacts are synced into a PostgreSQL table with a progress bar; ten contacts are changed
through the API and a second sync writes exactly those ten and announces them as events.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connector_adapters import InMemoryEventPublisher, SyncProgress, SyncReport
from connector_adapters.chatwoot import (
    ManagedChatwoot,
    MockChatwoot,
    MockChatwootServer,
    sync_contacts,
)
from connector_adapters.postgres_state import PostgresStateStore
from connector_adapters.salesforce import MockSalesforce, sobject_table_ddl, sync_sobject
from connector_core import redact_url
from connector_core.sync import FileStateStore, StreamSync
from connector_core.sync import SyncProgress as StreamProgress
from connector_file import FileConfig, FileConnector
from connector_postgres import PostgresConnector

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG_URL = "postgresql://connector:connector@127.0.0.1:55432/connector_test"
STATE_TABLE = "demo_connector_state"
CHANGED = 10

FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia",
         "Margaret", "Linus", "Guido", "Sophie", "Tim", "Hedy", "John", "Karen",
         "Niklaus")  # fmt: skip
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
        "Perlman", "Hamilton", "Torvalds", "van Rossum", "Wilson", "Berners-Lee", "Lamarr",
        "McCarthy", "Jones", "Wirth")  # fmt: skip
CITIES = ("Lisbon", "Berlin", "Nairobi", "Montreal", "Osaka", "Recife", "Tallinn", "Austin")
PLANS = ("free", "starter", "pro", "business")
TOPICS = ("Billing question", "Cannot log in", "Feature request", "Invoice copy",
          "Upgrade plan", "Bug report", "Cancel subscription", "Integration help")  # fmt: skip
INDUSTRIES = ("Energy", "Banking", "Retail", "Healthcare", "Education", "Media", "Transport")

console = Console(highlight=False, soft_wrap=True)


def pg_url(given: str | None) -> str:
    """--pg-url, else CONNECTOR_TEST_POSTGRES_URL, else .services.env, else the default."""
    if given:
        return given
    if os.environ.get("CONNECTOR_TEST_POSTGRES_URL"):
        return os.environ["CONNECTOR_TEST_POSTGRES_URL"]
    env_file = ROOT / ".services.env"
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "CONNECTOR_TEST_POSTGRES_URL" and value:
                return value
    return DEFAULT_PG_URL


def step(text: str) -> None:
    console.print(f"\n[bold cyan]==> {text}[/bold cyan]")


async def seed_chatwoot(backend: MockChatwoot, contacts: int, rng: random.Random) -> int:
    """Contacts with names, emails, phones, attributes, and conversations with messages."""
    messages = 0
    for i in range(1, contacts + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        contact = await backend.create_contact(
            inbox_id=1,
            name=f"{first} {last}",
            email=f"{first.lower()}.{last.lower().replace(' ', '')}.{i}@example.com",
            phone_number=f"+1555{i:07d}",
            identifier=f"crm-{i:06d}",
            additional_attributes={"city": rng.choice(CITIES), "company": f"{last} & Co"},
            custom_attributes={"plan": rng.choice(PLANS), "seats": rng.randint(1, 250)},
        )
        for c in range(rng.choice((0, 1, 1, 2, 3))):
            conv = await backend.create_conversation(
                source_id=f"src-{i}-{c}",
                inbox_id=1,
                contact_id=contact.id,
                message=f"{rng.choice(TOPICS)}: hello, can you help?",
            )
            messages += 1
            for m in range(rng.randint(1, 5)):
                kind = "outgoing" if m % 2 == 0 else "incoming"
                await backend.create_message(conv.id, content=f"reply {m + 1}", message_type=kind)
                messages += 1
            if rng.random() < 0.6:
                await backend.toggle_status(conv.id, "resolved")
    return messages


def progress_bar(total: int) -> tuple[Progress, Any]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )
    return progress, progress.add_task("syncing", total=total, rate="")


async def timed_sync(run: Any, total: int, what: str) -> SyncReport:
    """Run ``run(on_progress)`` with a progress bar over ``total`` items."""
    progress, task = progress_bar(total)
    started = time.monotonic()

    def on_progress(p: SyncProgress) -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        progress.update(
            task, completed=min(p.seen, total), rate=f"{p.seen / elapsed:,.0f} {what}/s"
        )

    with progress:
        report: SyncReport = await run(on_progress)
        progress.update(task, completed=total)
    return report


def summary(report: SyncReport) -> str:
    return (
        f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.failed} failed; {report.events} events; completed={report.completed}"
    )


def show_rows(rows: list[Any], title: str) -> None:
    table = Table(title=title)
    for column in rows[0].keys() if rows else ():
        table.add_column(column, overflow="fold", max_width=36)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


async def chatwoot_demo(pg: PostgresConnector, args: argparse.Namespace, url: str) -> None:
    rng = random.Random(15)
    table = "demo_chatwoot_contacts"
    backend = MockChatwoot(account_id=1)
    step(f"seeding a mock Chatwoot account with {args.contacts:,} contacts")
    messages = await seed_chatwoot(backend, args.contacts, rng)
    console.print(
        f"{len(backend.contacts):,} contacts, {len(backend.conversations):,} conversations, "
        f"{messages:,} messages"
    )
    async with MockChatwootServer(backend) as server:
        step(f"serving it over HTTP at {server.url}; the managed client connects")
        async with ManagedChatwoot(server.config()) as chatwoot:
            console.print(f"GET /api/v1/profile answered in {await chatwoot.ping() * 1000:.1f} ms")
            # The sync makes the table from CONTACTS_STREAM (DDL by connector-postgres).
            await pg.execute(f'DROP TABLE IF EXISTS "{table}"')
            state = PostgresStateStore(pg, table=STATE_TABLE)
            publisher = InMemoryEventPublisher()

            async def run(on_progress: Any) -> SyncReport:
                return await sync_contacts(
                    chatwoot, pg, table=table, account_id=1, publisher=publisher,
                    state=state, on_progress=on_progress,
                )  # fmt: skip

            step(f"syncing every contact into PostgreSQL table {table}")
            first = await timed_sync(run, len(backend.contacts), "contacts")
            console.print(f"synced {first.seen} contacts: {summary(first)}")

            step(f"changing {CHANGED} contacts through the Chatwoot API (PUT over HTTP)")
            changed = rng.sample(sorted(backend.contacts), CHANGED)
            for contact_id in changed:
                await chatwoot.update_contact(
                    contact_id, custom_attributes={"plan": "enterprise", "seats": 500}
                )
            console.print(f"upgraded to plan 'enterprise': {', '.join(map(str, changed))}")

            step("syncing again: only what changed is written and announced")
            seen_before = len(publisher.events)
            second = await timed_sync(run, len(backend.contacts), "contacts")
            console.print(f"re-synced {second.seen} contacts: {summary(second)}")
            events = publisher.events[seen_before:]
            console.print(f"{len(events)} events published:")
            for event in events:
                plan = event.payload.get("attributes", {}).get("plan")
                console.print(
                    f"  {event.type} id={event.entity_id} name={event.payload.get('name')!r} "
                    f"plan={plan}"
                )
            one = await chatwoot.list_conversations(status="all")
            if one.conversations:
                conv = one.conversations[0]
                latest = await chatwoot.list_messages(conv.id)
                console.print(
                    f"conversation {conv.id} ({conv.status}) has {len(latest)} messages, "
                    f"the first: {latest[0].content!r}"
                    if latest
                    else ""
                )
        console.print(f"the mock answered {server.requests} HTTP requests")
    rows = await pg.query(
        f"SELECT chatwoot_id, name, email, custom_attributes->>'plan' AS plan, "  # noqa: S608
        f"additional_attributes->>'city' AS city FROM \"{table}\" "
        "ORDER BY synced_at DESC, chatwoot_id LIMIT 5"
    )
    step("a few rows of the table (the last synced first)")
    show_rows([dict(r) for r in rows], table)
    what_next(url, table, "chatwoot_id")


async def salesforce_demo(pg: PostgresConnector, args: argparse.Namespace, url: str) -> None:
    rng = random.Random(15)
    table = "demo_salesforce_account"
    fields = ["Name", "Industry", "NumberOfEmployees"]
    sf = MockSalesforce()
    step(f"seeding a mock Salesforce org with {args.contacts:,} Accounts")
    ids = sf.seed(
        "Account",
        [
            {"Name": f"{rng.choice(LAST)} {rng.choice(('Ltd', 'GmbH', 'Inc', 'SA'))} {i}",
             "Industry": rng.choice(INDUSTRIES), "NumberOfEmployees": rng.randint(5, 50_000)}
            for i in range(1, args.contacts + 1)
        ],
    )  # fmt: skip
    await pg.execute(f'DROP TABLE IF EXISTS "{table}"')
    await pg.execute(sobject_table_ddl(await sf.describe("Account"), table, fields))
    state = PostgresStateStore(pg, table=STATE_TABLE)
    publisher = InMemoryEventPublisher()

    async def run(on_progress: Any) -> SyncReport:
        return await sync_sobject(
            sf, pg, "Account", fields=fields, table=table, batch_size=200,
            publisher=publisher, state=state, on_progress=on_progress,
        )  # fmt: skip

    step(f"syncing every Account into PostgreSQL table {table} (keyset on SystemModstamp)")
    first = await timed_sync(run, len(ids), "records")
    console.print(f"synced {first.seen} accounts: {summary(first)}")
    step(f"changing {CHANGED} Accounts")
    changed = rng.sample(ids, CHANGED)
    for record_id in changed:
        await sf.update("Account", record_id, {"Industry": "Aerospace"})
    step("syncing again: only what changed since the watermark is read")
    seen_before = len(publisher.events)
    second = await timed_sync(run, CHANGED, "records")
    console.print(f"re-synced {second.seen} accounts: {summary(second)}")
    events = publisher.events[seen_before:]
    console.print(f"{len(events)} events published:")
    for event in events:
        console.print(
            f"  {event.type} id={event.entity_id} industry={event.payload.get('Industry')}"
        )
    rows = await pg.query(
        f'SELECT id, name, industry, numberofemployees AS employees FROM "{table}" '  # noqa: S608
        "ORDER BY synced_at DESC, id LIMIT 5"
    )
    step("a few rows of the table (the last synced first)")
    show_rows([dict(r) for r in rows], table)
    what_next(url, table, "id")


async def files_demo(pg: PostgresConnector, args: argparse.Namespace, url: str) -> None:
    """A PostgreSQL table into an NDJSON file on the generic engine (connector_core.sync):
    any Readable into any Writable, checkpointed after every batch."""
    rng = random.Random(18)
    table, target = "demo_orders", "demo_orders.ndjson"
    out = Path(args.out) if args.out else ROOT / ".demo" / "exports"
    out.mkdir(parents=True, exist_ok=True)
    (out / target).unlink(missing_ok=True)
    state_file = out.parent / "demo_orders.state.json"
    state_file.unlink(missing_ok=True)
    step(f"seeding PostgreSQL table {table} with {args.contacts:,} orders")
    await pg.execute(f'DROP TABLE IF EXISTS "{table}"')
    await pg.execute(
        f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, customer text NOT NULL, '
        "city text NOT NULL, amount double precision NOT NULL, "
        "updated_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )
    await pg.execute(f'CREATE INDEX ON "{table}" (updated_at, id)')  # the read's order
    await pg.execute_many(
        f'INSERT INTO "{table}" (id, customer, city, amount) VALUES ($1, $2, $3, $4)',  # noqa: S608
        [
            (i, f"{rng.choice(FIRST)} {rng.choice(LAST)}", rng.choice(CITIES),
             round(rng.uniform(5, 900), 2))
            for i in range(1, args.contacts + 1)
        ],
    )  # fmt: skip
    # The file sink takes the table's primary key from the sync (ensure_stream) and
    # upserts on it: a changed order replaces its line (decision 0135).
    async with FileConnector(FileConfig(root=out)) as files:

        async def run(total: int) -> int:
            progress, task = progress_bar(total)
            started = time.monotonic()

            def on_progress(p: StreamProgress) -> None:
                rate = p.records / max(time.monotonic() - started, 1e-6)
                progress.update(task, completed=p.records, rate=f"{rate:,.0f} records/s")

            sync = StreamSync(
                pg, table, files, target=target, state=FileStateStore(state_file),
                batch_size=250, read_options={"cursor_field": "updated_at"},
                on_progress=on_progress,
            )  # fmt: skip
            with progress:
                report = await sync.run()
                progress.update(task, completed=total)
            return report.records

        step(f"syncing {table} into {out / target} (checkpoints in {state_file.name})")
        console.print(f"synced {await run(args.contacts)} orders into {target}")
        step(f"changing {CHANGED} orders in PostgreSQL")
        changed = rng.sample(range(1, args.contacts + 1), CHANGED)
        await pg.execute(
            f'UPDATE "{table}" SET city = $2, updated_at = clock_timestamp() '  # noqa: S608
            "WHERE id = ANY($1::bigint[])",
            changed, "Reykjavik",
        )  # fmt: skip
        step(
            "syncing again: only what changed after the checkpoint is read, and upserted on "
            "the table's key (the file keeps one line per order)"
        )
        console.print(f"re-synced {await run(CHANGED)} orders")
        lines = (out / target).read_text(encoding="utf-8").splitlines()
        console.print(f"{target} has {len(lines)} lines; the last three:", markup=False)
        for line in lines[-3:]:
            console.print(f"  {line}", markup=False)
    step("what to try next")
    console.print(
        f"  uv run connector read 'file://{out}' {target} --limit 5 --format table\n"
        "  The same StreamSync copies any Readable into any Writable (MongoDB, Kafka, files,"
        " PostgreSQL): see connector-core's README, 'Syncing any source into any sink'.",
        markup=False,
    )


def what_next(url: str, table: str, key: str) -> None:
    shown = redact_url(url).replace(":***@", ":${PGPASSWORD}@")
    step("what to try next")
    console.print(
        "The same data from the command line (it reads ${PGPASSWORD} itself, or asks):\n"
        f"  export PGPASSWORD=...   # the database password\n"
        f"  PG='{shown}'   # single quotes: the reference stays for the command\n"
        f'  uv run connector check "$PG"\n'
        f'  uv run connector discover "$PG" {table}\n'
        f'  uv run connector read "$PG" {table} --limit 5 --format table\n'
        f'  uv run connector sync "$PG" {table} "$PG" --into {table}_copy --state copy.json'
        "   # creates the copy, then copies only what changed\n"
        "Other demos: make demo DEMO_ARGS='--integration salesforce' (or 'postgres-file')\n"
        "Your own Chatwoot or Salesforce: ManagedChatwoot / ManagedSalesforce with your "
        "credentials, see packages/adapters/README.md.\n"
        f"Rows are upserted on {key}; run the demo again to start over.",
        markup=False,
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--integration", choices=("chatwoot", "salesforce", "postgres-file"), default="chatwoot"
    )
    parser.add_argument(
        "--contacts", type=int, default=1000, help="records to seed (default 1000; at least 10)"
    )
    parser.add_argument("--pg-url", help="PostgreSQL URL (default: the one of scripts/services)")
    parser.add_argument("--out", help="postgres-file: the export directory (.demo/exports)")
    args = parser.parse_args(argv)
    if args.contacts < CHANGED:
        parser.error(f"--contacts must be at least {CHANGED}")
    url = pg_url(args.pg_url)
    console.print(f"[bold]connectors demo[/bold]: {args.integration} -> PostgreSQL at "
                  f"{redact_url(url)}")  # fmt: skip
    async with PostgresConnector.from_url(url) as pg:
        await pg.execute(f'DROP TABLE IF EXISTS "{STATE_TABLE}"')
        if args.integration == "chatwoot":
            await chatwoot_demo(pg, args, url)
        elif args.integration == "salesforce":
            await salesforce_demo(pg, args, url)
        else:
            await files_demo(pg, args, url)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
