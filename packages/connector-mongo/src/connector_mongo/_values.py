"""BSON values: their portable field types, and JSON-safe forms for checkpoints.

The mapping (documented in the README):

==========================  ============  ===================
BSON (Python value)         FieldType     native_type
==========================  ============  ===================
string (str)                STRING        string
ObjectId                    STRING        objectId
int32 / int64 (int)         INTEGER       int / long
double (float)              NUMBER        double
Decimal128                  DECIMAL       decimal
bool                        BOOLEAN       bool
date (aware datetime, UTC)  DATETIME      date
UUID, binary subtype 4      UUID          uuid
binary (bytes)              BINARY        binData
embedded document (dict)    OBJECT        object
array (list)                ARRAY         array
null (None)                 (nullable)    null
anything else               UNKNOWN       its BSON name
==========================  ============  ===================
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from bson import Binary, Decimal128, Int64, ObjectId, json_util
from bson.codec_options import TypeRegistry
from bson.errors import InvalidId
from bson.json_util import JSONMode, JSONOptions

from connector_core import FieldType

_INT32 = 2**31
_RELAXED = JSONOptions(json_mode=JSONMode.RELAXED, tz_aware=True, uuid_representation=4)


def encode_fallback(value: Any) -> Any:
    """What BSON cannot encode by itself: a ``decimal.Decimal`` becomes a Decimal128
    (records of SQL sources carry them); anything else is left for BSON to refuse."""
    if isinstance(value, Decimal):
        return Decimal128(value)
    return value


TYPE_REGISTRY = TypeRegistry(fallback_encoder=encode_fallback)


def native_type(value: Any) -> str:
    """The BSON type name of a decoded value (``objectId``, ``long``, ``date``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "long"
    if isinstance(value, int):
        return "int" if -_INT32 <= value < _INT32 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, Decimal128 | Decimal):
        return "decimal"
    if isinstance(value, dt.datetime):
        return "date"
    if isinstance(value, uuid.UUID):
        return "uuid"
    if isinstance(value, Binary):
        return "uuid" if value.subtype == 4 else "binData"
    if isinstance(value, bytes):
        return "binData"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


_PORTABLE: dict[str, FieldType] = {
    "bool": FieldType.BOOLEAN,
    "int": FieldType.INTEGER,
    "long": FieldType.INTEGER,
    "double": FieldType.NUMBER,
    "string": FieldType.STRING,
    "objectId": FieldType.STRING,
    "decimal": FieldType.DECIMAL,
    "date": FieldType.DATETIME,
    "uuid": FieldType.UUID,
    "binData": FieldType.BINARY,
    "object": FieldType.OBJECT,
    "array": FieldType.ARRAY,
}


def portable_type(value: Any) -> FieldType:
    """The portable :class:`~connector_core.FieldType` of a BSON value (see the table in
    the README); ``UNKNOWN`` for null and the rare types (regex, timestamp, code, ...)."""
    return _PORTABLE.get(native_type(value), FieldType.UNKNOWN)


def portable_of_native(name: str) -> FieldType:
    """The portable type of a BSON type name."""
    return _PORTABLE.get(name, FieldType.UNKNOWN)


def to_json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: BSON-only values in MongoDB's relaxed Extended JSON
    (``{"$oid": ...}``, ``{"$date": ...}``, ``{"$numberDecimal": ...}``, ...), so that a
    checkpoint holding them survives ``json.dumps`` and comes back exactly."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.loads(json_util.dumps(value, json_options=_RELAXED))


def from_json_safe(value: Any) -> Any:
    """The inverse of :func:`to_json_safe` (plain values are returned as they are)."""
    if isinstance(value, dict | list):
        return json_util.loads(json.dumps(value), json_options=_RELAXED)
    return value


def cast_like(value: Any, example: Any) -> Any:
    """``value`` (from a checkpoint that went through JSON: a string, a number) cast to
    the type of ``example`` (a value stored in the collection); unchanged when it already
    has that type or cannot be cast (the comparison then finds what it finds)."""
    value = from_json_safe(value)
    if example is None or type(value) is type(example):
        return value
    try:
        if isinstance(example, dt.datetime) and isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value)
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
        if isinstance(example, ObjectId) and isinstance(value, str):
            return ObjectId(value)
        if isinstance(example, Decimal128) and isinstance(value, str | int | float):
            return Decimal128(str(value))
        if isinstance(example, uuid.UUID) and isinstance(value, str):
            return uuid.UUID(value)
        if isinstance(example, bool):
            return value
        if isinstance(example, int) and isinstance(value, str):
            return int(value)
        if isinstance(example, float) and isinstance(value, str | int):
            return float(value)
    except (ValueError, TypeError, InvalidId):
        return value
    return value
