"""A table's mapping resolved against the table itself: columns to entity fields with
their coercions, the key, the cursor and the soft-delete column, and the entity's
Stream."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from connector_adapters.postgres_data._config import Coercion, Incremental, PostgresDataConfig
from connector_core import FieldType, Record, SerializationError, Stream, StreamField, config_error

FIELD_TYPES: dict[str, FieldType] = {
    "int": FieldType.INTEGER,
    "float": FieldType.NUMBER,
    "decimal": FieldType.DECIMAL,
    "str": FieldType.STRING,
    "bool": FieldType.BOOLEAN,
    "datetime": FieldType.DATETIME,
    "date": FieldType.DATE,
    "json": FieldType.JSON,
}
"""The portable type of each coercion's values."""

_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("has a fraction")
    if isinstance(value, Decimal) and value != value.to_integral_value():
        raise ValueError("has a fraction")
    if isinstance(value, (float, Decimal)):
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(type(value).__name__)


def _to_float(value: Any) -> float:
    if isinstance(value, (int, float, Decimal, str)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(type(value).__name__)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise TypeError("bool")
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, (float, str)):
        try:
            return Decimal(str(value).strip())  # str(): 0.1 stays 0.1, not its binary value
        except InvalidOperation:
            raise ValueError("not a decimal number") from None
    raise TypeError(type(value).__name__)


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError("not a boolean (true/false, t/f, yes/no, on/off, 1/0)")


def _aware(value: dt.datetime) -> dt.datetime:
    # A timestamp without time zone is taken as UTC (what the sync writes back).
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _to_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return _aware(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        return _aware(dt.datetime.fromisoformat(value.strip()))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)  # seconds since the epoch
    raise TypeError(type(value).__name__)


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip())
    raise TypeError(type(value).__name__)


def _to_json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    if isinstance(value, (dict, list, int, float, bool)):
        return value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (Decimal, uuid.UUID, dt.date, dt.time)):
        return _to_str(value)
    raise TypeError(type(value).__name__)


COERCIONS: dict[str, Callable[[Any], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "decimal": _to_decimal,
    "str": _to_str,
    "bool": _to_bool,
    "datetime": _to_datetime,
    "date": _to_date,
    "json": _to_json,
}


def coerce(value: Any, kind: Coercion) -> Any:
    """``value`` as ``kind`` (None stays None). Raises SerializationError naming the
    coercion and the value's type when it cannot be converted."""
    if value is None:
        return None
    try:
        return COERCIONS[kind](value)
    except (TypeError, ValueError, OverflowError) as exc:
        reason = str(exc) or type(exc).__name__
        raise SerializationError(
            f"a {type(value).__name__} value cannot be coerced to {kind} ({reason})",
            connector="postgres_data",
        ) from None


@dataclass(frozen=True, slots=True)
class MappedColumn:
    column: str
    field: str
    coercion: Coercion | None


@dataclass(frozen=True, slots=True)
class TableMap:
    """One exposed table: how its rows become entity records, and how its changes are
    read. Built by :func:`table_map`; ``problems`` are what keeps it from being read
    (raised by :meth:`check`)."""

    table: str
    schema: str
    source: Stream
    columns: tuple[MappedColumn, ...]
    key: tuple[str, ...]
    """The key columns (the primary key unless the mapping gives one)."""
    cursor: str | None
    """The updated-at column (None in xmin mode)."""
    soft_delete: str | None
    incremental: Incremental
    entity_type: str
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    def field_of(self, column: str | None) -> str | None:
        for mapped in self.columns:
            if mapped.column == column:
                return mapped.field
        return None

    @property
    def key_fields(self) -> tuple[str, ...]:
        return tuple(f for f in (self.field_of(c) for c in self.key) if f is not None)

    @property
    def cursor_field(self) -> str | None:
        return self.field_of(self.cursor)

    @property
    def deleted_field(self) -> str | None:
        """The entity field that marks a delete (what StreamSync's ``deleted_field`` is)."""
        return self.field_of(self.soft_delete)

    def check(self) -> None:
        """Raise ConfigError naming every problem of this table's mapping."""
        if self.problems:
            raise config_error(f"PostgresDataConfig for table {self.qualified!r}", self.problems)

    def record(self, row: Mapping[str, Any]) -> Record:
        """The entity record of a row. Raises SerializationError naming the table and
        column whose value cannot be coerced."""
        out: dict[str, Any] = {}
        for mapped in self.columns:
            value = row.get(mapped.column)
            if mapped.coercion is not None and value is not None:
                try:
                    value = coerce(value, mapped.coercion)
                except SerializationError as exc:
                    raise SerializationError(
                        f"{self.qualified}.{mapped.column}: {exc.message}",
                        connector="postgres_data",
                    ) from None
            out[mapped.field] = value
        return out

    def entity_id(self, record: Mapping[str, Any]) -> str:
        """The entity's id: its key's value (a JSON list for a composite key)."""
        values = [record.get(f) for f in self.key_fields]
        if len(values) == 1:
            return str(values[0])
        return json.dumps(values, default=str)

    def is_deleted(self, record: Mapping[str, Any]) -> bool:
        field = self.deleted_field
        if field is None:
            return False
        value = record.get(field)
        return value is not None and value is not False

    def stream(self) -> Stream:
        """The entity's stream: the mapped fields with their coerced types."""
        by_name = {f.name: f for f in self.source.fields}
        fields = []
        for mapped in self.columns:
            source = by_name[mapped.column]
            if mapped.coercion is None:
                fields.append(source.model_copy(update={"name": mapped.field}))
            else:
                fields.append(
                    StreamField(
                        name=mapped.field,
                        type=FIELD_TYPES[mapped.coercion],
                        nullable=source.nullable,
                        description=source.description,
                    )
                )
        return Stream(
            name=self.table,
            namespace=self.schema,
            fields=tuple(fields),
            primary_key=self.key_fields if len(self.key_fields) == len(self.key) else (),
            cursor_field=self.cursor_field,
            estimated_count=self.source.estimated_count,
            kind=self.source.kind,
        )


def table_map(config: PostgresDataConfig, source: Stream) -> TableMap:
    """Resolve ``config``'s mapping of the table ``source`` describes."""
    table, schema = source.name, source.namespace or "public"
    mapping = config.mapping(table)
    known = [f.name for f in source.fields]
    listing = ", ".join(known)
    where = f"tables.{table}"
    problems: list[tuple[str, str]] = []
    for column in mapping.columns:
        if column not in known:
            problems.append(
                (
                    f"{where}.columns.{column}",
                    f"no such column in {schema}.{table}; known: {listing}",
                )
            )
    columns = tuple(
        MappedColumn(c, name, mapping.column(c).coerce)
        for c in known
        if (name := mapping.field_name(c)) is not None
    )
    kept = {m.column for m in columns}
    key = mapping.key or source.primary_key
    if not key:
        problems.append(
            (f"{where}.key", f"{schema}.{table} has no primary key: name its key columns")
        )
    for column in key:
        if column not in known:
            problems.append((f"{where}.key", f"no such column {column!r}; known: {listing}"))
        elif column not in kept:
            problems.append((f"{where}.columns", f"key column {column!r} must not be dropped"))
    incremental = config.incremental_of(table)
    cursor = config.cursor_column_of(table)
    if cursor is not None and cursor not in known:
        problems.append(
            (f"{where}.cursor_column" if mapping.cursor_column else "cursor_column",
             f"no column {cursor!r} in {schema}.{table} (known: {listing}); name the "
             f"updated-at column, or set {where}.incremental to 'xmin'")
        )  # fmt: skip
    if incremental == "xmin" and source.kind == "view":
        problems.append((f"{where}.incremental", "xmin needs a table (a view has no xmin)"))
    soft_delete = config.soft_delete_column_of(table)
    if soft_delete is not None:
        name = f"{where}.soft_delete_column" if mapping.soft_delete_column else "soft_delete_column"
        if soft_delete not in known:
            problems.append(
                (name, f"no column {soft_delete!r} in {schema}.{table}; known: {listing}")
            )
        elif soft_delete not in kept:
            problems.append(
                (f"{where}.columns", f"soft-delete column {soft_delete!r} must not be dropped")
            )
    return TableMap(
        table=table,
        schema=schema,
        source=source,
        columns=columns,
        key=tuple(key),
        cursor=cursor if cursor in known else None,
        soft_delete=soft_delete if soft_delete in kept else None,
        incremental=incremental,
        entity_type=mapping.entity_type or table,
        problems=tuple(problems),
    )
