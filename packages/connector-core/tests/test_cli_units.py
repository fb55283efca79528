"""The logic under the ``connector`` command line that needs no service: URL references,
records in and out, the sync state file, and keeping typer and rich out of the core's
import. (tests/test_cli.py runs the command itself against the real services.)"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from connector_core import Checkpoint, FieldType, Stream, StreamField
from connector_core._cli._records import (
    NdjsonError,
    cast_value,
    caster,
    cell,
    parse_ndjson,
    to_json,
)
from connector_core._cli._sync import (
    SyncIdentity,
    SyncState,
    SyncStateError,
    load_state,
    save_state,
)
from connector_core._cli._urls import UsageError, resolve_url, url_secrets


def test_importing_connector_core_imports_neither_typer_nor_rich() -> None:
    code = (
        "import sys, connector_core\n"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] in ('typer', 'rich', 'click')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_without_the_cli_extra_the_command_says_what_to_install() -> None:
    code = "import sys; sys.modules['typer'] = None\nfrom connector_core._cli import main\nmain()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 2
    assert out.stderr == (
        "error: the connector command line needs typer\nhint: pip install 'connector-core[cli]'\n"
    )


# -- ${VAR} references -----------------------------------------------------------------------


def test_a_reference_in_the_password_is_expanded_percent_encoded_and_kept_secret() -> None:
    resolved = resolve_url("postgresql://app:${PW}@db:5432/app", environ={"PW": "p@ss:w/rd"})
    assert resolved.url == "postgresql://app:p%40ss%3Aw%2Frd@db:5432/app"
    assert "p@ss:w/rd" in resolved.secrets
    assert resolved.shown == "postgresql://app:***@db:5432/app"


def test_references_in_the_host_and_path_go_in_as_they_are() -> None:
    resolved = resolve_url(
        "postgresql://app@${HOST}/${DB}?sslmode=require&password=${PW}",
        environ={"HOST": "db.internal:6432", "DB": "sales", "PW": "a b&c"},
    )
    assert (
        resolved.url == "postgresql://app@db.internal:6432/sales?sslmode=require&password=a%20b%26c"
    )
    assert resolved.secrets == ("a b&c",)


def test_an_unset_reference_is_prompted_for_or_is_a_usage_error() -> None:
    asked: list[str] = []

    def prompt(name: str) -> str:
        asked.append(name)
        return "typed"

    resolved = resolve_url("kafka://u:${KAFKA_PW}@broker:9092", environ={}, prompt=prompt)
    assert asked == ["KAFKA_PW"]
    assert resolved.url == "kafka://u:typed@broker:9092"
    with pytest.raises(UsageError, match=r"environment variable KAFKA_PW is not set") as err:
        resolve_url("kafka://u:${KAFKA_PW}@broker:9092", environ={})
    assert err.value.hint is not None


def test_url_secrets_finds_the_password_and_credential_query_values() -> None:
    assert set(url_secrets("https://h/api?api_access_token=tok-1&page=2")) == {"tok-1"}
    assert set(url_secrets("mongodb://u:p%40w@h/db")) == {"p%40w", "p@w"}
    assert url_secrets("postgresql://h/db") == ()


# -- records ---------------------------------------------------------------------------------

STREAM = Stream(
    name="t",
    fields=(
        StreamField(name="at", type=FieldType.DATETIME),
        StreamField(name="day", type=FieldType.DATE),
        StreamField(name="amount", type=FieldType.DECIMAL),
        StreamField(name="id", type=FieldType.UUID),
        StreamField(name="blob", type=FieldType.BINARY),
        StreamField(name="n", type=FieldType.INTEGER),
    ),
)


def test_json_records_are_cast_back_to_the_streams_types() -> None:
    record = caster(STREAM)(
        {"at": "2025-01-02T03:04:05Z", "day": "2025-01-02", "amount": "1.50",
         "id": str(uuid.UUID(int=7)), "blob": "aGk=", "n": 3}
    )  # fmt: skip
    assert record == {
        "at": dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "day": dt.date(2025, 1, 2),
        "amount": Decimal("1.50"),
        "id": uuid.UUID(int=7),
        "blob": b"hi",
        "n": 3,
    }
    # What cannot be cast is left for the connector to accept or report.
    assert caster(STREAM)({"at": "yesterday"}) == {"at": "yesterday"}
    assert json.loads(to_json(record)) == {
        "at": "2025-01-02T03:04:05+00:00", "day": "2025-01-02", "amount": "1.50",
        "id": str(uuid.UUID(int=7)), "blob": "aGk=", "n": 3,
    }  # fmt: skip


def test_since_values_are_typed_by_the_cursor_field() -> None:
    assert cast_value("2025-01-02T00:00:00+00:00", STREAM, "at") == dt.datetime(
        2025, 1, 2, tzinfo=dt.UTC
    )
    assert cast_value("42", STREAM, "n") == 42
    assert cast_value("abc", None, None) == "abc"


def test_cells_show_nested_values_as_json_and_none_as_empty() -> None:
    assert [cell(v) for v in (None, True, 3, {"a": [1]}, Decimal("2.0"))] == [
        "", "true", "3", '{"a": [1]}', "2.0",
    ]  # fmt: skip


def test_ndjson_lines_must_be_objects() -> None:
    assert list(parse_ndjson(['{"a": 1}\n', "\n", '{"a": 2}'])) == [(1, {"a": 1}), (3, {"a": 2})]
    with pytest.raises(NdjsonError, match="line 2 of the input is not a JSON object: got list"):
        list(parse_ndjson(['{"a": 1}', "[1]"]))


# -- the state file --------------------------------------------------------------------------

IDENTITY = SyncIdentity("postgresql://u:***@h/db", "public.t", "mongodb://h/", "t")


def test_the_state_file_round_trips_its_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert load_state(path, IDENTITY).checkpoint is None
    checkpoint = Checkpoint(cursor=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), key=(7,))
    save_state(path, SyncState(IDENTITY, checkpoint, records=10, runs=2))
    loaded = load_state(path, IDENTITY)
    assert (loaded.records, loaded.runs) == (10, 2)
    assert loaded.checkpoint == Checkpoint(cursor="2025-01-01T00:00:00Z", key=(7,))
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left


def test_a_state_file_of_another_sync_or_a_broken_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, SyncState(IDENTITY))
    other = SyncIdentity(IDENTITY.source, "public.other", IDENTITY.sink, IDENTITY.sink_stream)
    with pytest.raises(SyncStateError, match="belongs to another sync"):
        load_state(path, other)
    path.write_text("{not json")
    with pytest.raises(SyncStateError, match="cannot read the state file"):
        load_state(path, IDENTITY)
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(SyncStateError, match="is not a connector sync state file"):
        load_state(path, IDENTITY)
