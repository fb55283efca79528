"""Portable types of fields: inferred from a sample, or hinted, and the conversions that
give records their typed values back (CSV holds only text, JSON has no timestamps)."""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connector_core import FieldType, StreamField

Convert = Callable[[Any], Any]

_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")
_BOOLEANS = {"true": True, "false": False}


def _is_datetime(text: str) -> bool:
    if not _DATETIME.match(text):
        return False
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def type_of_text(text: str) -> FieldType:
    """The narrowest type a CSV cell's text reads as, without losing anything (``007``
    stays a string: as an integer it would lose its zeros)."""
    if _INTEGER.fullmatch(text):
        return FieldType.INTEGER
    if _NUMBER.fullmatch(text):
        return FieldType.NUMBER
    if text in _BOOLEANS:
        return FieldType.BOOLEAN
    return type_of_string(text)


def type_of_string(text: str) -> FieldType:
    """STRING, or DATETIME/DATE for ISO 8601 text."""
    if _is_datetime(text):
        return FieldType.DATETIME
    if _is_date(text):
        return FieldType.DATE
    return FieldType.STRING


def type_of_value(value: Any) -> FieldType:
    """The portable type of a decoded JSON value (strings looked at for timestamps)."""
    if isinstance(value, bool):
        return FieldType.BOOLEAN
    if isinstance(value, int):
        return FieldType.INTEGER
    if isinstance(value, float):
        return FieldType.NUMBER
    if isinstance(value, str):
        return type_of_string(value)
    if isinstance(value, list):
        return FieldType.ARRAY
    if isinstance(value, dict):
        return FieldType.OBJECT
    return FieldType.JSON


def _merge(types: set[FieldType]) -> FieldType:
    if not types:
        return FieldType.UNKNOWN
    if len(types) == 1:
        return next(iter(types))
    if types <= {FieldType.INTEGER, FieldType.NUMBER}:
        return FieldType.NUMBER
    if types <= {FieldType.DATETIME, FieldType.DATE, FieldType.STRING}:
        return FieldType.STRING  # some text is no timestamp: all of it stays text
    return FieldType.JSON


class _Seen:
    __slots__ = ("count", "items", "nulls", "types")

    def __init__(self) -> None:
        self.count = 0
        self.nulls = 0
        self.types: set[FieldType] = set()
        self.items: set[FieldType] = set()


def infer_fields(
    records: Iterable[Mapping[str, Any]],
    *,
    text: bool,
    hints: Mapping[str, FieldType],
    infer: bool,
) -> tuple[StreamField, ...]:
    """The fields of ``records`` in order of first appearance, with portable types
    (``hints`` win; without ``infer``, CSV cells are STRING and JSON values keep their
    JSON type). ``text``: the values are CSV cells (empty cells are nulls). A field that
    is missing or null in some record is nullable."""
    seen: dict[str, _Seen] = {}
    total = 0
    for record in records:
        total += 1
        for name, value in record.items():
            field = seen.get(name)
            if field is None:
                field = seen[name] = _Seen()
            field.count += 1
            if value is None or (text and value == ""):
                field.nulls += 1
                continue
            if text:
                field.types.add(type_of_text(value) if infer else FieldType.STRING)
            else:
                kind = type_of_value(value)
                if not infer and kind in (FieldType.DATETIME, FieldType.DATE):
                    kind = FieldType.STRING
                field.types.add(kind)
                if kind is FieldType.ARRAY:
                    field.items.update(type_of_value(v) for v in value)
    fields = []
    for name, field in seen.items():
        kind = hints.get(name) or _merge(field.types)
        item = _merge(field.items) if kind is FieldType.ARRAY and field.items else None
        fields.append(
            StreamField(
                name=name,
                type=kind,
                nullable=field.nulls > 0 or field.count < total,
                item_type=item,
            )
        )
    for name, kind in hints.items():
        if name not in seen:
            fields.append(StreamField(name=name, type=kind))
    return tuple(fields)


# -- conversions -------------------------------------------------------------------------


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise ValueError(f"not a boolean: {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    raise ValueError(f"not an integer: {value!r}")


def _to_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise ValueError(f"not a number: {value!r}")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("not a decimal: a boolean")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a decimal: {value!r}") from None


def _from_text(parse: Callable[[str], Any], kind: type) -> Convert:
    def convert(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        if not isinstance(value, str):
            raise ValueError(f"not {kind.__name__} text: {value!r}")
        return parse(value)

    return convert


_FROM_TEXT: dict[FieldType, Convert] = {
    FieldType.INTEGER: _to_int,
    FieldType.NUMBER: _to_float,
    FieldType.DECIMAL: _to_decimal,
    FieldType.BOOLEAN: _to_bool,
    FieldType.DATETIME: _from_text(dt.datetime.fromisoformat, dt.datetime),
    FieldType.DATE: _from_text(dt.date.fromisoformat, dt.date),
    FieldType.TIME: _from_text(dt.time.fromisoformat, dt.time),
    FieldType.UUID: _from_text(uuid.UUID, uuid.UUID),
    FieldType.BINARY: _from_text(lambda t: base64.b64decode(t, validate=True), bytes),
}


def converters(fields: Iterable[StreamField], *, text: bool) -> dict[str, Convert]:
    """Per field, what turns a decoded value into its typed one; only the fields that
    need it (JSON integers are integers already; CSV cells all need one but strings)."""
    found: dict[str, Convert] = {}
    for field in fields:
        convert = _FROM_TEXT.get(field.type)
        if convert is None:
            continue
        if not text and field.type in (FieldType.INTEGER, FieldType.NUMBER, FieldType.BOOLEAN):
            continue  # JSON has them (a hint on a JSON field does not reinterpret it)
        found[field.name] = convert
    return found


def cast(value: Any, convert: Convert | None) -> Any:
    """``value`` (from a checkpoint or a plain ``since``, maybe through JSON) as its
    field's type."""
    if convert is None or value is None:
        return value
    return convert(value)


# -- values out -------------------------------------------------------------------------


def text_of(value: Any) -> str:
    """A value as CSV cell text, the way ``type_of_text`` reads it back. TypeError for
    what has no text form (a set, an arbitrary object)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinity have no portable text form")
        return repr(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"a {type(value).__name__} has no CSV text form")


def json_default(value: Any) -> Any:
    """The JSON form of what JSON lacks: ISO 8601 text, decimals and UUIDs as text,
    bytes as base64. TypeError otherwise (the record is refused, not half-written)."""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"a {type(value).__name__} has no JSON form")
