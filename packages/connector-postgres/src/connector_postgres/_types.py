"""PostgreSQL types mapped onto the portable FieldType set."""

from __future__ import annotations

from connector_core import FieldType

_BY_NAME: dict[str, FieldType] = {
    "int2": FieldType.INTEGER,
    "int4": FieldType.INTEGER,
    "int8": FieldType.INTEGER,
    "oid": FieldType.INTEGER,
    "xid": FieldType.INTEGER,
    "xid8": FieldType.INTEGER,
    "float4": FieldType.NUMBER,
    "float8": FieldType.NUMBER,
    "numeric": FieldType.DECIMAL,
    "money": FieldType.DECIMAL,
    "bool": FieldType.BOOLEAN,
    "text": FieldType.STRING,
    "varchar": FieldType.STRING,
    "bpchar": FieldType.STRING,
    "char": FieldType.STRING,
    "name": FieldType.STRING,
    "citext": FieldType.STRING,
    "xml": FieldType.STRING,
    "inet": FieldType.STRING,
    "cidr": FieldType.STRING,
    "macaddr": FieldType.STRING,
    "macaddr8": FieldType.STRING,
    "tsvector": FieldType.STRING,
    "tsquery": FieldType.STRING,
    "bit": FieldType.STRING,
    "varbit": FieldType.STRING,
    "date": FieldType.DATE,
    "time": FieldType.TIME,
    "timetz": FieldType.TIME,
    "timestamp": FieldType.DATETIME,
    "timestamptz": FieldType.DATETIME,
    "interval": FieldType.DURATION,
    "bytea": FieldType.BINARY,
    "uuid": FieldType.UUID,
    "json": FieldType.JSON,
    "jsonb": FieldType.JSON,
    "hstore": FieldType.OBJECT,
}

# pg_type.typtype / typcategory values that decide the mapping on their own.
_ENUM = "e"
_COMPOSITE = "c"
_RANGE_KINDS = frozenset({"r", "m"})
_ARRAY_CATEGORY = "A"


def field_type(typname: str, typtype: str = "b", typcategory: str = "") -> FieldType:
    """The portable type of a (non-array) PostgreSQL type.

    Enums map to STRING, composites to OBJECT, ranges to STRING (their text form),
    anything unknown to UNKNOWN.
    """
    if typcategory == _ARRAY_CATEGORY:
        return FieldType.ARRAY
    if typtype == _ENUM:
        return FieldType.STRING
    if typtype == _COMPOSITE:
        return FieldType.OBJECT
    if typtype in _RANGE_KINDS:
        return FieldType.STRING
    return _BY_NAME.get(typname, FieldType.UNKNOWN)
