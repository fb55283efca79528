"""PostgresDataConfig: which database, which tables, how each maps to an entity, and how
changes are found (an updated-at column or ``xmin``) and deletes (a soft-delete column)."""

from __future__ import annotations

import fnmatch
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from connector_core import ConfigError, ConnectorConfig, SettingsModel, config_error
from connector_postgres import PostgresConfig

Coercion = Literal["int", "float", "decimal", "str", "bool", "datetime", "date", "json"]
"""The type a column's values are turned into (see the README's coercion table)."""
Incremental = Literal["updated_at", "xmin"]
"""How changed rows are found: an updated-at column, or the row's ``xmin``."""

MAX_BATCH_SIZE = 100_000
DEFAULT_CURSOR_COLUMN = "updated_at"


def _names(value: Any) -> Any:
    # Environment variables and URLs carry lists as "a,b,c".
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class ColumnMapping(SettingsModel):
    """How one column becomes one field of the entity: its name there and its type."""

    field: str | None = Field(None, min_length=1, max_length=256)
    """The entity field's name (default: the column's name)."""
    coerce: Coercion | None = None
    """The type its values are turned into (default: as the driver returns them)."""


class TableMapping(SettingsModel):
    """The mapping of one table to its entity, and how its changes are read.

    ``columns`` maps a column to a field name, or to a :class:`ColumnMapping` (a name
    and a coercion). Columns not listed keep their name and value (``unmapped="keep"``)
    or are left out (``"drop"``). ``key`` overrides the primary key (needed for a view
    or a table without one). ``incremental``, ``cursor_column`` and
    ``soft_delete_column`` override the config's defaults for this table; an explicit
    ``soft_delete_column=None`` turns the soft delete off for it.
    """

    entity_type: str | None = Field(None, min_length=1, max_length=128)
    """The entity's name in events (``<entity_type>.created``; default: the table's)."""
    columns: dict[str, ColumnMapping] = Field(default_factory=dict)
    unmapped: Literal["keep", "drop"] = "keep"
    key: tuple[str, ...] = ()
    incremental: Incremental | None = None
    cursor_column: str | None = Field(None, min_length=1, max_length=63)
    soft_delete_column: str | None = Field(None, min_length=1, max_length=63)

    @field_validator("key", mode="before")
    @classmethod
    def _split_key(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("columns", mode="before")
    @classmethod
    def _field_names(cls, value: Any) -> Any:
        # {"amount": "total"} is short for {"amount": {"field": "total"}}.
        if isinstance(value, dict):
            return {k: {"field": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("columns")
    @classmethod
    def _check_columns(cls, value: dict[str, ColumnMapping]) -> dict[str, ColumnMapping]:
        if any(not c or len(c.encode()) > 63 for c in value):
            raise ValueError("column names must be 1 to 63 bytes")
        return value

    def column(self, name: str) -> ColumnMapping:
        """The mapping of column ``name`` (its own name, no coercion, when not listed)."""
        return self.columns.get(name) or ColumnMapping()

    def field_name(self, column: str) -> str | None:
        """The entity field of ``column``; None when the column is dropped."""
        if column not in self.columns:
            return column if self.unmapped == "keep" else None
        return self.column(column).field or column


class PostgresDataConfig(ConnectorConfig):
    """Configuration of the PostgreSQL data adapter (managed and mock).

    ``postgres`` is the database (a :class:`~connector_postgres.PostgresConfig`, a
    mapping of its fields or a ``postgresql://`` URL); ``mode="auto"`` (the default) is
    managed when it is set and mock when it is not. ``include`` and ``exclude`` are
    glob patterns (``fnmatch``, case-sensitive) matched against a table's bare name and
    its ``schema.name``: a table is exposed when an include pattern matches and no
    exclude pattern does. ``tables`` maps a table name to its :class:`TableMapping`.
    Changed rows are found by ``incremental``: ``"updated_at"`` (the ``cursor_column``,
    ordered with the key) or ``"xmin"`` (the transaction that last wrote each row; no
    column needed, every read scans the table). A row whose ``soft_delete_column`` is
    set (not NULL, not false) is a delete.

    The connection's own settings (timeouts, retries, pool) are ``postgres``'s; the
    ``timeout``, ``retry`` and ``circuit_breaker`` of this config are not used.

    Raises ConfigError naming every bad field (never a value): also a mapping of a
    table no include pattern admits or an exclude pattern removes, two columns mapped
    to one field, and ``mode="managed"`` without ``postgres``.
    """

    url_schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres")

    postgres: PostgresConfig | None = None
    mode: Literal["auto", "managed", "mock"] = "auto"
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    tables: dict[str, TableMapping] = Field(default_factory=dict)
    incremental: Incremental = "updated_at"
    cursor_column: str = Field(DEFAULT_CURSOR_COLUMN, min_length=1, max_length=63)
    soft_delete_column: str | None = Field(None, min_length=1, max_length=63)
    batch_size: int = Field(1000, ge=1, le=MAX_BATCH_SIZE)
    """Rows per round trip of a read, and records per batch of :func:`sync_table`."""

    @field_validator("postgres", mode="before")
    @classmethod
    def _postgres_from_url(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return PostgresConfig.fields_from_url(value)
            except ConfigError as exc:
                reason = "; ".join(e.message for e in exc.errors) or "not a valid URL"
            raise ValueError(reason)  # outside the except block: the URL is not chained
        return value

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _split_patterns(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("include", "exclude")
    @classmethod
    def _check_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not pattern or len(pattern) > 256 for pattern in value):
            raise ValueError("patterns must be 1 to 256 characters")
        return value

    @model_validator(mode="after")
    def _check_agreement(self) -> PostgresDataConfig:
        problems: list[tuple[str, str]] = []
        if self.mode == "managed" and self.postgres is None:
            problems.append(("postgres", "required when mode is 'managed'"))
        if not self.include:
            problems.append(("include", "must list at least one pattern"))
        for table, mapping in self.tables.items():
            if not table:
                problems.append(("tables", "a table name must not be empty"))
                continue
            schemas = self.postgres.schemas if self.postgres is not None else ("public",)
            if not any(self.exposes(table, schema) for schema in schemas):
                problems.append(
                    (f"tables.{table}", "no include pattern admits this table, or an exclude "
                     "pattern removes it; fix the patterns or drop the mapping")
                )  # fmt: skip
            seen: dict[str, str] = {}
            for column in mapping.columns:
                name = mapping.field_name(column)
                if name is None:
                    continue
                if name in seen:
                    problems.append(
                        (f"tables.{table}.columns.{column}",
                         f"maps to field {name!r}, as column {seen[name]!r} does")
                    )  # fmt: skip
                seen[name] = column
        if problems:
            raise config_error(type(self).__name__, problems)
        return self

    @property
    def is_managed(self) -> bool:
        """Whether this config selects the managed client (a real PostgreSQL)."""
        if self.mode == "auto":
            return self.postgres is not None
        return self.mode == "managed"

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        """``postgresql://...`` -> ``{"postgres": <its fields>}`` (the URL is the database)."""
        return {"postgres": PostgresConfig.fields_from_url(url)}

    def connection_string(self, reveal: bool = False) -> str:
        """The database's URL (password masked unless ``reveal``); ``mock://`` without one."""
        if self.postgres is None:
            return "mock://postgres-data"
        return self.postgres.connection_string(reveal=reveal)

    def exposes(self, table: str, schema: str) -> bool:
        """Whether ``schema.table`` is exposed by ``include`` and ``exclude``."""
        names = (table, f"{schema}.{table}")

        def matches(patterns: tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)

        return matches(self.include) and not matches(self.exclude)

    def mapping(self, table: str) -> TableMapping:
        """The mapping of ``table`` (every column as it is when none is configured)."""
        return self.tables.get(table) or TableMapping()

    def incremental_of(self, table: str) -> Incremental:
        mapping = self.tables.get(table)
        return mapping.incremental if mapping and mapping.incremental else self.incremental

    def cursor_column_of(self, table: str) -> str | None:
        """The updated-at column of ``table``; None in ``xmin`` mode."""
        if self.incremental_of(table) == "xmin":
            return None
        mapping = self.tables.get(table)
        return mapping.cursor_column if mapping and mapping.cursor_column else self.cursor_column

    def soft_delete_column_of(self, table: str) -> str | None:
        mapping = self.tables.get(table)
        if mapping is not None and "soft_delete_column" in mapping.model_fields_set:
            return mapping.soft_delete_column
        return self.soft_delete_column
