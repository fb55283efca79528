"""The typed results connectors return: catalogs, check and write results."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from connector_core._errors import ErrorCode, NotFoundError

Record: TypeAlias = Mapping[str, Any]
"""One record: a mapping of field name to value."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldType(StrEnum):
    """The portable type set every connector maps its native types onto."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    TIME = "time"
    DATETIME = "datetime"
    DURATION = "duration"
    BINARY = "binary"
    UUID = "uuid"
    JSON = "json"
    ARRAY = "array"
    OBJECT = "object"
    UNKNOWN = "unknown"


class StreamField(_Frozen):
    """One field of a stream."""

    name: str
    type: FieldType
    nullable: bool = True
    native_type: str | None = None
    """The source's own type name (``timestamptz``, ``varchar(20)``, ...)."""
    item_type: FieldType | None = None
    """For arrays, the type of the items."""
    description: str | None = None


class ForeignKey(_Frozen):
    """A reference from fields of one stream to fields of another."""

    fields: tuple[str, ...]
    references_stream: str
    references_fields: tuple[str, ...]


class Stream(_Frozen):
    """A named collection of records: a table, a topic, an API resource."""

    name: str
    namespace: str | None = None
    fields: tuple[StreamField, ...] = ()
    primary_key: tuple[str, ...] = ()
    cursor_field: str | None = None
    foreign_keys: tuple[ForeignKey, ...] = ()
    estimated_count: int | None = None
    kind: str = "table"

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name

    def field(self, name: str) -> StreamField:
        """The field called ``name``; raises NotFoundError listing the known fields."""
        for f in self.fields:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.fields) or "none"
        raise NotFoundError(
            f"field {name!r} not found in stream {self.qualified_name!r}; known fields: {known}"
        )


class Catalog(_Frozen):
    """What a source holds: its streams."""

    streams: tuple[Stream, ...] = ()

    def stream(self, name: str) -> Stream:
        """The stream called ``name`` (bare or ``namespace.name``); raises NotFoundError."""
        for s in self.streams:
            if name in (s.name, s.qualified_name):
                return s
        known = ", ".join(s.qualified_name for s in self.streams) or "none"
        raise NotFoundError(f"stream {name!r} not found; known streams: {known}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.qualified_name for s in self.streams)


class CheckResult(_Frozen):
    """The outcome of ``check()``: is the connector usable, how fast, and if not, why."""

    ok: bool
    connector: str
    latency: float | None = None
    """Round trip of the ping, in seconds."""
    error: str | None = None
    error_code: ErrorCode | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Checkpoint(_Frozen):
    """A position in a stream: just after the record whose cursor is ``cursor`` and
    whose key (primary key values, in order, the cursor left out when it is part of the
    key) is ``key``.

    ``read(stream, since=checkpoint)`` resumes strictly after that record, so nothing is
    repeated or skipped even when many records share one cursor value; with ``key=()``
    it means "cursor strictly greater than ``cursor``". It survives JSON
    (``Checkpoint.model_validate_json(cp.model_dump_json())``): connectors cast string
    values back to the cursor's and key's types. See :class:`Readable`.
    """

    cursor: Any = None
    key: tuple[Any, ...] = ()

    @classmethod
    def after(
        cls,
        record: Mapping[str, Any],
        *,
        cursor_field: str | None,
        key_fields: Sequence[str],
    ) -> Checkpoint:
        """The checkpoint just after ``record`` (``key_fields`` without the cursor)."""
        cursor = record[cursor_field] if cursor_field is not None else None
        return cls(cursor=cursor, key=tuple(record[k] for k in key_fields if k != cursor_field))


class SchemaChange(_Frozen):
    """What a sink did to make a stream's table or collection fit a :class:`Stream`."""

    created: bool = False
    """The table, collection or topic did not exist and was created."""
    added: tuple[str, ...] = ()
    """Fields that were added to it (columns a source added later)."""


class RecordError(_Frozen):
    """Why one record of a write failed."""

    index: int
    """Position of the record in the batch given to ``write()``."""
    message: str
    code: ErrorCode = ErrorCode.UNKNOWN
    key: Any = None
    """The record's primary key value(s), when known."""


_write_logger = logging.getLogger("connector_core.write")
# Reading these says the caller looked at what failed.
_INSPECTING = frozenset({"failed", "errors", "ok", "model_dump", "model_dump_json"})


class WriteResult(_Frozen):
    """The outcome of ``write()``: how many records were written, how many failed and why.

    Rejected records are never lost silently: a result with failures that is dropped
    without anyone reading ``failed``, ``errors`` or ``ok`` logs a WARNING on
    ``connector_core.write`` naming how many records were rejected and the first errors.
    """

    written: int = 0
    failed: int = 0
    errors: tuple[RecordError, ...] = ()
    _inspected: bool = PrivateAttr(default=False)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def __getattribute__(self, name: str) -> Any:
        if name in _INSPECTING:
            private = object.__getattribute__(self, "__pydantic_private__")
            if private is not None:
                private["_inspected"] = True
        return super().__getattribute__(name)

    def __eq__(self, other: object) -> bool:
        # Comparing results is reading them (both sides).
        for result in (self, other):
            if isinstance(result, WriteResult):
                result.ok  # noqa: B018 - marks it inspected
        return super().__eq__(other)

    def __hash__(self) -> int:  # defining __eq__ would drop the frozen model's hash
        return super().__hash__()

    def __del__(self) -> None:
        try:
            private = object.__getattribute__(self, "__pydantic_private__")
            values = object.__getattribute__(self, "__dict__")
        except AttributeError:  # never fully built
            return
        if private is None or private.get("_inspected") or not values.get("failed"):
            return
        errors = values.get("errors", ())
        first = "; ".join(f"#{e.index} {e.code.value}: {e.message}" for e in errors[:3])
        _write_logger.warning(
            "a write rejected %d record(s) and its WriteResult was dropped unread; "
            "first errors: %s",
            values["failed"],
            first or "none given",
        )
