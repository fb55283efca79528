"""Records in and out of the command line: NDJSON, CSV and tables, and JSON values cast
back to a stream's field types."""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import IO, Any

from connector_core._models import FieldType, Stream


def json_default(value: Any) -> Any:
    """JSON for what connectors hand out beyond JSON's types."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(record: Mapping[str, Any]) -> str:
    return json.dumps(dict(record), default=json_default, ensure_ascii=False)


def cell(value: Any) -> str:
    """One value as text in a CSV cell or a table (nested values as JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=json_default, ensure_ascii=False)
    encoded = json_default(value)
    return encoded if isinstance(encoded, str) else json.dumps(encoded)


class CsvWriter:
    """CSV with a header taken from the first record's fields."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._writer: csv.DictWriter[str] | None = None

    def write(self, record: Mapping[str, Any]) -> None:
        if self._writer is None:
            self._writer = csv.DictWriter(self._out, fieldnames=list(record), extrasaction="ignore")
            self._writer.writeheader()
        self._writer.writerow({k: cell(v) for k, v in record.items()})


def _parse_datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


_CASTS: dict[FieldType, Callable[[str], Any]] = {
    FieldType.DATETIME: _parse_datetime,
    FieldType.DATE: dt.date.fromisoformat,
    FieldType.TIME: dt.time.fromisoformat,
    FieldType.DECIMAL: Decimal,
    FieldType.UUID: uuid.UUID,
    FieldType.BINARY: base64.b64decode,
}


def caster(stream: Stream | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function that casts a JSON record's text values to ``stream``'s field types
    (timestamps, dates, decimals, UUIDs, base64 bytes); values it cannot cast are left as
    they are, for the connector to accept or report."""
    casts = {f.name: _CASTS[f.type] for f in (stream.fields if stream else ()) if f.type in _CASTS}

    def cast(record: dict[str, Any]) -> dict[str, Any]:
        for name, to_type in casts.items():
            value = record.get(name)
            if isinstance(value, str):
                with contextlib.suppress(ValueError, InvalidOperation, TypeError):
                    record[name] = to_type(value)
        return record

    return cast


def cast_value(text: str, stream: Stream | None, field: str | None) -> Any:
    """A value given on the command line (``--since``) in the type of ``field``: JSON
    (numbers, ``true``) when it parses as JSON, text otherwise, then cast like records."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = text
    if stream is None or field is None:
        return value
    record = caster(stream)({field: value if not isinstance(value, bool) else text})
    return record[field]


class NdjsonError(Exception):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line} of the input is not a JSON object: {problem}")
        self.line = line


def parse_ndjson(lines: Iterable[str]) -> Iterable[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for every non-blank line; NdjsonError for one that is not
    a JSON object."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise NdjsonError(number, str(exc)) from None
        if not isinstance(value, dict):
            raise NdjsonError(number, f"got {type(value).__name__}")
        yield number, value
