"""Tables made from a Stream: the DDL for a stream's fields and key, and what makes an
existing column able to hold a field of a portable type."""

from __future__ import annotations

from collections.abc import Sequence

from connector_core import FieldType, SchemaChangeError, Stream, StreamField
from connector_postgres._identifiers import column_list, qualified, quote_ident

_SQL_TYPES: dict[FieldType, str] = {
    FieldType.STRING: "text",
    FieldType.INTEGER: "bigint",
    FieldType.NUMBER: "double precision",
    FieldType.DECIMAL: "numeric",
    FieldType.BOOLEAN: "boolean",
    FieldType.DATE: "date",
    FieldType.TIME: "time",
    FieldType.DATETIME: "timestamptz",
    FieldType.DURATION: "interval",
    FieldType.BINARY: "bytea",
    FieldType.UUID: "uuid",
    FieldType.JSON: "jsonb",
    FieldType.OBJECT: "jsonb",
    FieldType.ARRAY: "jsonb",
    FieldType.UNKNOWN: "jsonb",  # holds any JSON value the field turns out to have
}
_NAIVE_TIMESTAMPS = frozenset({"timestamp", "timestamp without time zone"})
_JSONISH = frozenset({FieldType.JSON, FieldType.OBJECT, FieldType.ARRAY, FieldType.UNKNOWN})
# Column type -> the field types its values may also hold without loss.
_WIDER: dict[FieldType, frozenset[FieldType]] = {
    FieldType.NUMBER: frozenset({FieldType.INTEGER}),
    FieldType.DECIMAL: frozenset({FieldType.INTEGER}),
    FieldType.JSON: _JSONISH
    | frozenset({FieldType.STRING, FieldType.INTEGER, FieldType.NUMBER, FieldType.BOOLEAN}),
}


def sql_type(field: StreamField) -> str:
    """The PostgreSQL type a column for ``field`` gets: the portable type's (``bigint``,
    ``text``, ``timestamptz``, ``jsonb`` for objects, unknown types and arrays without
    a simple item type; ``<item>[]`` for arrays of scalars)."""
    if field.type is FieldType.DATETIME and (field.native_type or "") in _NAIVE_TIMESTAMPS:
        return "timestamp"
    if field.type is FieldType.ARRAY and field.item_type is not None:
        item = _SQL_TYPES[field.item_type]
        if item != "jsonb":
            return f"{item}[]"
    return _SQL_TYPES[field.type]


def split_name(name: str, default_schema: str) -> tuple[str, str]:
    """``schema.table`` or ``table`` (in ``default_schema``) as (schema, table)."""
    schema, dot, table = name.rpartition(".")
    return (schema, table) if dot else (default_schema, name)


def create_table_sql(schema: str, table: str, stream: Stream) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``stream``'s fields (see :func:`sql_type`)
    with its primary key; the key's columns are NOT NULL, the others nullable (a field a
    source inferred from samples may yet be missing)."""
    key = set(stream.primary_key)
    columns = [
        f"{quote_ident(f.name)} {sql_type(f)}{' NOT NULL' if f.name in key else ''}"
        for f in stream.fields
    ]
    if stream.primary_key:
        columns.append(f"PRIMARY KEY ({column_list(stream.primary_key)})")
    body = ",\n  ".join(columns)
    return f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} (\n  {body}\n)"


def add_columns_sql(schema: str, table: str, fields: Sequence[StreamField]) -> str:
    """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` for each of ``fields``."""
    adds = ", ".join(
        f"ADD COLUMN IF NOT EXISTS {quote_ident(f.name)} {sql_type(f)}" for f in fields
    )
    return f"ALTER TABLE {qualified(schema, table)} {adds}"


def check_fits(table_name: str, columns: Stream, wanted: Stream) -> list[StreamField]:
    """The fields of ``wanted`` that ``columns`` (an existing table's stream) lacks.
    Raises SchemaChangeError for the first field whose column cannot hold its values."""
    existing = {f.name: f for f in columns.fields}
    missing: list[StreamField] = []
    for f in wanted.fields:
        column = existing.get(f.name)
        if column is None:
            missing.append(f)
        elif not _holds(column, f):
            native = column.native_type or column.type.value
            raise SchemaChangeError(
                f"table {table_name!r}: column {f.name!r} is {native} ({column.type.value}), "
                f"which cannot hold the source's {f.type.value} values; alter or drop the "
                "column, then run again",
                stream=table_name,
                field=f.name,
                was=column.type.value,
                now=f.type.value,
                connector="postgres",
            )
    return missing


def _holds(column: StreamField, field: StreamField) -> bool:
    if field.type is FieldType.UNKNOWN or column.type is FieldType.UNKNOWN:
        return True
    if column.type is field.type:
        return True
    return field.type in _WIDER.get(column.type, frozenset())
