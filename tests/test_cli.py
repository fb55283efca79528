"""The ``connector`` command line, run as a user runs it (the installed console script, in
a subprocess) against the real services: PostgreSQL, and FerretDB as a MongoDB sink."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from install_support import make_venv

from connector_core import redact_url
from connector_mongo import MongoConnector

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("connector")
COMMANDS = ("list", "check", "discover", "read", "write", "sync")


def connector(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``connector ARGS`` with no controlling terminal (so nothing can prompt)."""
    return subprocess.run(
        [str(SCRIPT), *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        start_new_session=True,
        check=False,
    )


async def _sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _rows(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def sql(url: str, statement: str) -> None:
    asyncio.run(_sql(url, statement))


def rows(url: str, query: str) -> list[asyncpg.Record]:
    return asyncio.run(_rows(url, query))


@pytest.fixture
def pg(postgres_database_url: str) -> str:
    return postgres_database_url


@pytest.fixture
def people(pg: str) -> str:
    """A table of 25 people with a key, text, a decimal, a timestamp and JSON."""
    name = f"people_{uuid.uuid4().hex[:8]}"
    sql(
        pg,
        f"CREATE TABLE {name} (id int PRIMARY KEY, name text NOT NULL, balance numeric(10,2),"
        " joined timestamptz NOT NULL, tags jsonb);"
        f" INSERT INTO {name} SELECT g, 'person ' || g, g * 1.25,"
        " timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour', jsonb_build_object('g', g)"
        " FROM generate_series(1, 25) g",
    )
    return name


def closed_port_url() -> str:
    return "postgresql://nobody:nothing@127.0.0.1:9/none?connect_timeout=2"


# -- help, list, usage -----------------------------------------------------------------------


def test_help_on_every_command() -> None:
    top = connector("--help")
    assert top.returncode == 0, top.stderr
    for command in COMMANDS:
        assert command in top.stdout
        result = connector(command, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage: connector " + command in result.stdout


def test_python_dash_m_runs_the_same_app() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "connector_core", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("connector (connector-core 0.")


def test_list_shows_installed_packages_and_their_schemes() -> None:
    result = connector("list", "--json")
    assert result.returncode == 0, result.stderr
    packages = {p["package"]: p for p in json.loads(result.stdout)}
    postgres = packages["connector-postgres"]
    assert postgres["installed"] is True
    assert postgres["version"].startswith("0.")
    assert {"postgres", "postgresql"} <= set(postgres["schemes"])
    assert packages["connector-http"]["schemes"] == ["http", "https"]
    assert packages["connector-websocket"]["schemes"] == ["ws", "wss"]
    assert packages["connector-file"]["installed"] is True
    table = connector("list")
    assert "connector-kafka" in table.stdout


def test_list_and_check_name_the_install_line_of_a_package_not_installed(
    tmp_path: Path,
) -> None:
    """In an environment with only connector-core[cli] and connector-postgres (the
    workspace has every package, so this needs an environment of its own)."""
    python = make_venv(
        tmp_path, f"{ROOT}/packages/connector-core[cli]", f"{ROOT}/packages/connector-postgres"
    )
    script = python.with_name("connector")
    run = lambda *args: subprocess.run(  # noqa: E731
        [str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )
    listed = run("list", "--json")
    assert listed.returncode == 0, listed.stderr
    packages = {p["package"]: p for p in json.loads(listed.stdout)}
    assert packages["connector-postgres"]["installed"] is True
    missing = packages["connector-file"]
    assert missing["installed"] is False
    assert missing["install"] == "pip install connector-file"
    assert "pip install connector-websocket" in run("list").stdout
    ws = run("check", "wss://example.org/feed")
    assert ws.returncode == 2
    assert "pip install connector-websocket" in ws.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("check",),  # missing URL
        ("read", "postgresql://x@127.0.0.1/db"),  # missing stream
        ("read", "postgresql://x@127.0.0.1/db", "t", "--format", "xml"),
        ("check", "--no-such-option", "postgresql://x@127.0.0.1/db"),
        ("frobnicate",),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    result = connector(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


def test_a_url_no_connector_handles_is_a_usage_error_with_the_install_line() -> None:
    result = connector("check", "websocket+x://example.org")
    assert result.returncode == 2
    assert result.stderr.startswith("error: no connector installed for URL scheme")
    assert "hint: `connector list`" in result.stderr


# -- check -----------------------------------------------------------------------------------


def test_check_ok(pg: str) -> None:
    result = connector("check", pg)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: postgres answered in ")
    as_json = json.loads(connector("check", pg, "--json").stdout)
    assert as_json["ok"] is True
    assert as_json["latency"] > 0


def test_check_failing_exits_1_with_one_line_and_a_hint() -> None:
    result = connector("check", closed_port_url())
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: check failed: [postgres] cannot reach the server")
    assert lines[1] == "hint: is the server running, and are the host and port right?"
    assert len(lines) == 2  # no log lines, no traceback without --verbose / --debug


def test_tracebacks_only_with_debug(pg: str) -> None:
    plain = connector("read", pg, "no_such_table")
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert "no_such_table" in plain.stderr.splitlines()[0]
    debug = connector("read", pg, "no_such_table", "--debug")  # global flags after the command
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr


def test_verbose_logs_to_stderr() -> None:
    result = connector("--verbose", "check", closed_port_url())
    assert result.returncode == 1
    assert "WARNING connector.postgres" in result.stderr


# -- discover, read, write -------------------------------------------------------------------


def test_discover_json(pg: str, people: str) -> None:
    result = connector("discover", pg, "--json")
    assert result.returncode == 0, result.stderr
    catalog = json.loads(result.stdout)
    stream = next(s for s in catalog["streams"] if s["name"] == people)
    assert stream["namespace"] == "public"
    assert stream["primary_key"] == ["id"]
    assert {f["name"]: f["type"] for f in stream["fields"]} == {
        "id": "integer", "name": "string", "balance": "decimal", "joined": "datetime",
        "tags": "json",
    }  # fmt: skip
    one = connector("discover", pg, people)
    assert one.returncode == 0
    assert "timestamp with time zone" in one.stdout


def test_read_ndjson_csv_and_table(pg: str, people: str) -> None:
    ndjson = connector("read", pg, people, "--limit", "3")
    assert ndjson.returncode == 0, ndjson.stderr
    records = [json.loads(line) for line in ndjson.stdout.splitlines()]
    assert records == [
        {"id": i, "name": f"person {i}", "balance": f"{i * 1.25:.2f}",
         "joined": f"2024-01-01T{i:02d}:00:00+00:00", "tags": {"g": i}}
        for i in (1, 2, 3)
    ]  # fmt: skip

    as_csv = connector("read", pg, people, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(table) == 25
    assert table[24] == {
        "id": "25", "name": "person 25", "balance": "31.25",
        "joined": "2024-01-02T01:00:00+00:00", "tags": '{"g": 25}',
    }  # fmt: skip

    shown = connector("read", pg, people, "-f", "table", "--limit", "2")
    assert shown.returncode == 0
    assert "person 2" in shown.stdout
    assert "person 3" not in shown.stdout
    assert "2 records" in shown.stderr


def test_read_since_a_timestamp_on_the_cursor(pg: str, people: str) -> None:
    result = connector(
        "read", pg, people, "--cursor", "joined", "--since", "2024-01-02T00:00:00+00:00"
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [24, 25]
    no_cursor = connector("read", pg, people, "--since", "3")
    assert no_cursor.returncode == 2
    assert "--since needs a cursor field" in no_cursor.stderr


def test_write_then_read_back(pg: str) -> None:
    table = f"events_{uuid.uuid4().hex[:8]}"
    sql(pg, f"CREATE TABLE {table} (id uuid PRIMARY KEY, at timestamptz, amount numeric, n int)")
    given = [
        {"id": str(uuid.UUID(int=i)), "at": f"2025-03-0{i}T10:00:00+00:00",
         "amount": f"{i}.50", "n": i}
        for i in range(1, 6)
    ]  # fmt: skip
    stdin = "".join(json.dumps(r) + "\n" for r in given) + "\n"
    written = connector("write", pg, table, "--batch-size", "2", stdin=stdin)
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == f"wrote 5 records to {table}"
    back = connector("read", pg, table)
    assert sorted(
        (json.loads(line) for line in back.stdout.splitlines()), key=lambda r: r["n"]
    ) == (given)
    typed = rows(pg, f"SELECT pg_typeof(at)::text AS t, amount FROM {table} WHERE n = 1")
    assert typed[0]["t"] == "timestamp with time zone"
    assert str(typed[0]["amount"]) == "1.50"


def test_write_stops_at_a_bad_line_and_at_a_rejected_batch(pg: str) -> None:
    table = f"strict_{uuid.uuid4().hex[:8]}"
    sql(pg, f"CREATE TABLE {table} (id int PRIMARY KEY, n int NOT NULL)")
    bad_json = connector("write", pg, table, stdin='{"id": 1, "n": 1}\nnot json\n')
    assert bad_json.returncode == 2
    assert "line 2 of the input is not a JSON object" in bad_json.stderr
    rejected = connector(
        "write", pg, table, "--batch-size", "1", stdin='{"id": 2, "n": 2}\n{"id": 3, "n": null}\n'
    )
    assert rejected.returncode == 1
    assert "the sink rejected records of batch 2" in rejected.stderr
    assert "1 records were written and checkpointed before it" in rejected.stderr
    assert [r["id"] for r in rows(pg, f"SELECT id FROM {table} ORDER BY id")] == [2]


# -- sync ------------------------------------------------------------------------------------


def test_sync_postgres_to_postgres_resumes_from_the_state_file(
    pg: str, people: str, tmp_path: Path
) -> None:
    sink = f"copy_{uuid.uuid4().hex[:8]}"
    # No primary key on the sink: every write is an insert, so a record copied twice
    # would be a second row.
    sql(pg, f"CREATE TABLE {sink} (id int, name text, balance numeric, joined timestamptz,"
            " tags jsonb)")  # fmt: skip
    state = tmp_path / "people.state.json"
    args = ("sync", pg, people, pg, "--into", sink, "--state", str(state), "--batch-size", "10")

    first = connector(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("synced 25 records in 3 batches (from the start)")
    assert f"{people} -> {sink}" in first.stderr  # the progress bar
    saved = json.loads(state.read_text())
    assert saved["checkpoint"] == {"cursor": None, "key": [25]}
    assert saved["records"] == 25
    assert saved["source"] == redact_url(pg)  # no password in the state file

    again = connector(*args)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("synced 0 records in 0 batches (resumed from the state file)")

    sql(pg, f"INSERT INTO {people} SELECT g, 'late ' || g, 0, now(), null"
            " FROM generate_series(26, 30) g")  # fmt: skip
    later = connector(*args)
    assert later.stdout.startswith("synced 5 records in 1 batches (resumed")
    copied = rows(pg, f"SELECT id, count(*) AS n FROM {sink} GROUP BY id ORDER BY id")
    assert [(r["id"], r["n"]) for r in copied] == [(i, 1) for i in range(1, 31)]
    assert rows(pg, f"SELECT * FROM {sink} WHERE id = 7")[0]["tags"] == '{"g": 7}'

    other = connector("sync", pg, people, pg, "--into", "elsewhere", "--state", str(state))
    assert other.returncode == 2
    assert "belongs to another sync" in other.stderr


def test_sync_creates_a_sink_table_that_does_not_exist(pg: str, people: str) -> None:
    sink = f"made_{uuid.uuid4().hex[:8]}"
    result = connector("sync", pg, people, pg, "--into", sink)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("synced 25 records")
    assert f"created {sink} in the sink" in result.stdout
    copied = rows(pg, f"SELECT id, name FROM {sink} ORDER BY id")
    assert [r["id"] for r in copied] == list(range(1, 26))
    source = rows(pg, f"SELECT id, name FROM {people} ORDER BY id")
    assert [dict(r) for r in copied] == [dict(r) for r in source]


def test_sync_postgres_to_mongodb(pg: str, mongo_url: str, unique_collection: str) -> None:
    source = f"notes_{uuid.uuid4().hex[:8]}"
    sql(
        pg,
        f"CREATE TABLE {source} (id int PRIMARY KEY, body text, at timestamptz); INSERT"
        f" INTO {source} SELECT g, 'note ' || g, now() FROM generate_series(1, 40) g",
    )
    state = Path(f"/tmp/{unique_collection}.json")
    try:
        args = ("sync", pg, source, mongo_url, "--into", unique_collection, "--state", str(state))
        assert connector(*args).stdout.startswith("synced 40 records")
        assert connector(*args).stdout.startswith("synced 0 records")

        async def documents() -> list[dict[str, object]]:
            async with MongoConnector.from_url(mongo_url) as mongo:
                found = [d async for d in mongo.read(unique_collection)]
                await mongo.drop_collection(unique_collection)
                return found

        found = asyncio.run(documents())
        assert sorted(d["id"] for d in found) == list(range(1, 41))  # once each
    finally:
        state.unlink(missing_ok=True)


# -- secrets ---------------------------------------------------------------------------------


@pytest.fixture
def secret_role(pg: str) -> Iterator[tuple[str, str]]:
    """A login role with a distinctive password: (role, password)."""
    role = f"cli_{uuid.uuid4().hex[:8]}"
    password = f"Pw-{uuid.uuid4().hex}"
    sql(pg, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    yield role, password
    sql(pg, f"DROP ROLE IF EXISTS {role}")


def _with_user(url: str, userinfo: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{userinfo}@{rest.split('@', 1)[1]}"


def test_a_password_from_an_env_var_reference_never_shows(
    pg: str, secret_role: tuple[str, str]
) -> None:
    role, password = secret_role
    url = _with_user(pg, role + ":${CLI_TEST_PASSWORD}")
    ok = connector("--verbose", "check", url, env={"CLI_TEST_PASSWORD": password})
    assert ok.returncode == 0, ok.stderr
    assert password not in ok.stdout + ok.stderr

    wrong = password[:-1] + "x"
    for args in (("check", url), ("--debug", "discover", url), ("--debug", "read", url, "t")):
        failed = connector(*args, env={"CLI_TEST_PASSWORD": wrong})
        assert failed.returncode == 1, failed.stderr
        assert "password authentication failed" in failed.stderr
        assert wrong not in failed.stdout + failed.stderr

    literal = connector("--debug", "check", _with_user(pg, f"{role}:{wrong}"))
    assert literal.returncode == 1
    assert wrong not in literal.stdout + literal.stderr

    empty = connector("check", url, env={"CLI_TEST_PASSWORD": ""})
    assert empty.returncode == 1  # set but empty: an empty password, refused by the server
    missing = subprocess.run(
        [str(SCRIPT), "check", url], capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if k != "CLI_TEST_PASSWORD"},
        start_new_session=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert missing.returncode == 2
    assert "environment variable CLI_TEST_PASSWORD is not set" in missing.stderr


def test_an_unset_reference_is_asked_for_on_the_terminal_without_echo(
    pg: str, secret_role: tuple[str, str]
) -> None:
    role, password = secret_role
    url = _with_user(pg, role + ":${CLI_PROMPTED_PASSWORD}")
    env = {k: v for k, v in os.environ.items() if k != "CLI_PROMPTED_PASSWORD"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.execve(str(SCRIPT), [str(SCRIPT), "check", url], env)
    seen = b""
    deadline = time.monotonic() + 60
    answered = False
    code = None
    while code is None and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            seen += chunk
            if not answered and b"CLI_PROMPTED_PASSWORD: " in seen:
                os.write(fd, password.encode() + b"\n")
                answered = True
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
    os.close(fd)
    assert answered, seen
    assert code == 0, seen
    text = seen.decode(errors="replace")
    assert "ok: postgres answered in" in text
    assert password not in text  # not echoed
