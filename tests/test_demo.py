"""`make demo`'s script, run as `make demo` runs it (a subprocess), on a small data set, so
it never rots: each integration into a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def run_demo(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(DEMO), *args],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_chatwoot_demo_syncs_then_writes_exactly_the_ten_changed(
    postgres_database_url: str,
) -> None:
    out = run_demo("--contacts", "40", "--pg-url", postgres_database_url)
    assert "synced 40 contacts: 40 created, 0 updated, 0 unchanged, 0 failed; 40 events" in out
    assert "re-synced 40 contacts: 0 created, 10 updated, 30 unchanged, 0 failed; 10 events" in out
    assert "10 events published:" in out
    updated = re.findall(r"contact\.updated id=(\d+) .* plan=enterprise", out)
    assert len(set(updated)) == 10
    assert re.search(r"serving it over HTTP at http://127\.0\.0\.1:\d+", out)
    assert "what to try next" in out
    assert "connector" + ":" + "connector@" not in out  # the database password is not shown
    rows = asyncio.run(
        _fetch(
            postgres_database_url,
            "SELECT chatwoot_id FROM demo_chatwoot_contacts "
            "WHERE custom_attributes->>'plan' = 'enterprise'",
        )
    )
    assert sorted(str(r["chatwoot_id"]) for r in rows) == sorted(updated)
    count = asyncio.run(
        _fetch(postgres_database_url, "SELECT count(*) FROM demo_chatwoot_contacts")
    )
    assert count[0][0] == 40


def test_salesforce_demo(postgres_database_url: str) -> None:
    out = run_demo(
        "--integration", "salesforce", "--contacts", "30", "--pg-url", postgres_database_url
    )
    assert "synced 30 accounts: 30 created" in out
    assert "re-synced 10 accounts: 0 created, 10 updated, 0 unchanged, 0 failed; 10 events" in out
    assert len(re.findall(r"account\.updated id=\w+ industry=Aerospace", out)) == 10


def test_postgres_to_file_demo(postgres_database_url: str, tmp_path: Path) -> None:
    out = run_demo(
        "--integration", "postgres-file", "--contacts", "40",
        "--pg-url", postgres_database_url, "--out", str(tmp_path / "exports"),
    )  # fmt: skip
    assert "synced 40 orders into demo_orders.ndjson" in out
    assert "re-synced 10 orders" in out
    lines = (tmp_path / "exports" / "demo_orders.ndjson").read_text().splitlines()
    # Upserted on the table's key: one line per order, the 10 changed ones rewritten last.
    orders = [json.loads(line) for line in lines]
    assert sorted(r["id"] for r in orders) == list(range(1, 41))
    changed = orders[30:]
    assert {r["city"] for r in changed} == {"Reykjavik"}
    assert "Reykjavik" not in {r["city"] for r in orders[:30]}
