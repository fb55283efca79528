"""sObject describes -> the portable Catalog (Id as key, SystemModstamp as cursor)."""

from __future__ import annotations

from collections.abc import Iterable

from connector_adapters.salesforce._models import SObjectDescribe
from connector_core import Catalog, FieldType, Stream, StreamField

SOAP_TYPES: dict[str, FieldType] = {
    "id": FieldType.STRING,
    "reference": FieldType.STRING,
    "string": FieldType.STRING,
    "textarea": FieldType.STRING,
    "picklist": FieldType.STRING,
    "multipicklist": FieldType.STRING,
    "combobox": FieldType.STRING,
    "email": FieldType.STRING,
    "phone": FieldType.STRING,
    "url": FieldType.STRING,
    "encryptedstring": FieldType.STRING,
    "boolean": FieldType.BOOLEAN,
    "int": FieldType.INTEGER,
    "long": FieldType.INTEGER,
    "double": FieldType.NUMBER,
    "currency": FieldType.DECIMAL,
    "percent": FieldType.DECIMAL,
    "date": FieldType.DATE,
    "datetime": FieldType.DATETIME,
    "time": FieldType.TIME,
    "base64": FieldType.BINARY,
    "address": FieldType.OBJECT,
    "location": FieldType.OBJECT,
    "json": FieldType.JSON,
    "anytype": FieldType.UNKNOWN,
}
"""Salesforce field types (describe's ``type``) -> portable types; others are UNKNOWN."""

CURSOR_FIELDS = ("SystemModstamp", "LastModifiedDate", "CreatedDate")
"""The cursor of a stream: the first of these its object has (SystemModstamp changes on
every write, system ones included)."""


def portable_type(salesforce_type: str) -> FieldType:
    return SOAP_TYPES.get(salesforce_type.lower(), FieldType.UNKNOWN)


def describe_to_stream(describe: SObjectDescribe) -> Stream:
    """One Stream for an sObject: every field with its portable type, ``Id`` as primary
    key, SystemModstamp (or the next best timestamp) as cursor."""
    names = describe.field_names()
    cursor = next((c for c in CURSOR_FIELDS if c in names), None)
    return Stream(
        name=describe.name,
        fields=tuple(
            StreamField(
                name=f.name,
                type=portable_type(f.type),
                nullable=f.nillable,
                native_type=f.type,
                description=f.label,
            )
            for f in describe.fields
        ),
        primary_key=("Id",) if "Id" in names else (),
        cursor_field=cursor,
        kind="sobject",
    )


def catalog_of(describes: Iterable[SObjectDescribe]) -> Catalog:
    return Catalog(streams=tuple(describe_to_stream(d) for d in describes))
