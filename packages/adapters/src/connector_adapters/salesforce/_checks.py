"""Checks of what goes into a Salesforce URL or body, shared by both clients."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connector_adapters.salesforce._soql import soql_identifier
from connector_core import InvalidRequestError

_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?")


def new_correlation_id(given: str | None) -> str:
    """``given``, or a fresh UUID4 string when None."""
    return given if given else str(uuid.uuid4())


def check_sobject(name: str) -> str:
    """An sObject name (``Account``, ``Invoice__c``): nothing else goes into a URL path."""
    if isinstance(name, str) and "." in name:
        raise InvalidRequestError(f"{name!r} is not an sObject name", connector="salesforce")
    return soql_identifier(name)


def check_record_id(record_id: str) -> str:
    """A 15- or 18-character Salesforce id (nothing else goes into a URL path)."""
    if not isinstance(record_id, str) or not _RECORD_ID.fullmatch(record_id):
        raise InvalidRequestError(
            f"{record_id!r} is not a Salesforce record id (15 or 18 letters and digits)",
            connector="salesforce",
        )
    return record_id


def check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise InvalidRequestError(
                f"{name} must be an aware datetime (datetime.now(UTC))", connector="salesforce"
            )
    if not start < end:
        raise InvalidRequestError("start must be before end", connector="salesforce")
    return start, end


def check_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(fields, Mapping):
        raise InvalidRequestError("fields must be a mapping", connector="salesforce")
    for name in fields:
        soql_identifier(name)
    return dict(fields)


def jsonable(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Field values as JSON holds them: dates and datetimes in ISO 8601, Decimal as float."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = float(value)
        out[key] = value
    return out
