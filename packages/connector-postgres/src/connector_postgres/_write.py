"""SQL for bulk writes and upserts, and locating the record a failed batch tripped on."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from connector_core import ConnectorError, SerializationError
from connector_postgres._catalog import Table
from connector_postgres._identifiers import column_list, quote_ident

STAGE_TABLE = "connector_postgres_upsert_stage"
# Every reference to the stage names its schema: unqualified, it resolves through
# search_path, and with pg_temp placed last (a common hardening) that finds a permanent
# table of the same name first, someone else's (docs/decisions/0051).
STAGE_SCHEMA = "pg_temp"
_STAGE = f"{STAGE_SCHEMA}.{quote_ident(STAGE_TABLE)}"
ORDINAL = "connector_postgres_ordinal"

# COPY reports the failing input line; in binary COPY each record is one "line".
_COPY_LINE = re.compile(r"\bCOPY [^,]+, line (\d+)")
# asyncpg's client-side encoding errors name the element of the batch.
_ELEMENT = re.compile(r"element #(\d+)")


def stage_sql(table: Table, columns: Sequence[str]) -> str:
    """A temporary table shaped like ``columns`` of ``table`` plus an arrival ordinal;
    dropped at commit (or rollback)."""
    return (
        f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS "  # noqa: S608
        f"SELECT {column_list(columns)} FROM {table.sql_name} WITH NO DATA; "
        f"ALTER TABLE {_STAGE} "
        f"ADD COLUMN {quote_ident(ORDINAL)} bigint GENERATED ALWAYS AS IDENTITY"
    )


def _conflict_clause(columns: Sequence[str], key: Sequence[str]) -> str:
    updates = [c for c in columns if c not in key]
    target = column_list(key)
    if not updates:
        return f"ON CONFLICT ({target}) DO NOTHING"
    assignments = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in updates)
    return f"ON CONFLICT ({target}) DO UPDATE SET {assignments}"


def merge_stage_sql(table: Table, columns: Sequence[str], key: Sequence[str]) -> str:
    """Upsert the staged rows into ``table``; of several rows with one key, the last wins."""
    cols = column_list(columns)
    return (
        f"INSERT INTO {table.sql_name} ({cols}) "  # noqa: S608
        f"SELECT DISTINCT ON ({column_list(key)}) {cols} FROM {_STAGE} "
        f"ORDER BY {column_list(key)}, {quote_ident(ORDINAL)} DESC "
        f"{_conflict_clause(columns, key)}"
    )


def upsert_sql(table: Table, columns: Sequence[str], key: Sequence[str]) -> str:
    """One-row upsert, for small batches sent with executemany."""
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return (
        f"INSERT INTO {table.sql_name} ({column_list(columns)}) VALUES ({params}) "  # noqa: S608
        f"{_conflict_clause(columns, key)}"
    )


def is_record_error(error: ConnectorError) -> bool:
    """Whether ``error`` is about the data of some record (a bad value, a constraint)
    rather than about the request, the connection or the server."""
    if isinstance(error, SerializationError):
        return True
    state = str(error.details.get("sqlstate", ""))
    return state[:2] in ("22", "23")


def failing_index(error: ConnectorError) -> int | None:
    """The batch position of the record the server or driver complained about, if it said."""
    context = str(error.details.get("context", ""))
    match = _COPY_LINE.search(context)
    if match:
        return int(match.group(1)) - 1
    match = _ELEMENT.search(error.message)
    if match:
        return int(match.group(1))
    return None


def key_of(record: Mapping[str, Any], key: Sequence[str]) -> Any:
    """The record's primary key value (a tuple for composite keys), None if absent."""
    if not key:
        return None
    values = tuple(record.get(k) for k in key)
    return values[0] if len(values) == 1 else values


def drop_stage_sql() -> str:
    """Drop the staging table now (inside a longer transaction, ON COMMIT is too late)."""
    return f"DROP TABLE {_STAGE}"
