"""Salesforce's JSON error array -> the ConnectorError classes, errorCode and fields kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector_adapters.salesforce._models import SalesforceErrorItem
from connector_core import (
    AuthenticationError,
    ConflictError,
    ConnectorError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitedError,
)

SESSION_EXPIRED = "session expired or invalid"
"""INVALID_SESSION_ID with this message: the token expired, a new one cures it."""
NOT_FOR_REST = "not valid for use with the rest api"
"""INVALID_SESSION_ID with this message: the token's scope or the user's permissions do
not allow the REST API; a new token is refused the same way."""

_QUERY_CODES = frozenset(
    {
        "MALFORMED_QUERY",
        "INVALID_FIELD",
        "INVALID_TYPE",
        "INVALID_QUERY_FILTER_OPERATOR",
        "INVALID_QUERY_LOCATOR",
        "QUERY_TIMEOUT",
        "EXCEEDED_ID_LIMIT",
    }
)
_CONFLICT_CODES = frozenset(
    {"DUPLICATE_VALUE", "DUPLICATES_DETECTED", "DUPLICATE_EXTERNAL_ID", "ENTITY_IS_LOCKED"}
)
_PERMISSION_CODES = frozenset(
    {
        "INSUFFICIENT_ACCESS",
        "INSUFFICIENT_ACCESS_OR_READONLY",
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
        "API_DISABLED_FOR_ORG",
        "API_CURRENTLY_DISABLED",
        "FUNCTIONALITY_NOT_ENABLED",
    }
)


def error_items(body: Any) -> list[SalesforceErrorItem]:
    """The error array of an error response (a single object is taken as one item)."""
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return []
    items = []
    for entry in body:
        if isinstance(entry, dict):
            fields = entry.get("fields")
            items.append(
                SalesforceErrorItem(
                    message=str(entry.get("message") or ""),
                    errorCode=str(entry.get("errorCode") or ""),
                    fields=[str(f) for f in fields] if isinstance(fields, list) else [],
                )
            )
    return items


def is_session_expired(items: Sequence[SalesforceErrorItem]) -> bool:
    """INVALID_SESSION_ID that a new token cures (not the 'not valid for REST' kind)."""
    return any(
        i.error_code == "INVALID_SESSION_ID" and NOT_FOR_REST not in i.message.lower()
        for i in items
    )


def _hint(code: str, message: str) -> str:
    if code == "INVALID_SESSION_ID" and NOT_FOR_REST in message.lower():
        return (
            "; the token is not allowed to use the REST API: give the connected app the "
            "'api' OAuth scope and the user the 'API Enabled' permission (a new token "
            "would be refused the same way, so none is requested)"
        )
    if code == "INVALID_SESSION_ID":
        return "; the token was refused again after a new login: check the connected app"
    if code == "REQUEST_LIMIT_EXCEEDED":
        return (
            "; the org's daily API request limit is used up: wait for the rolling 24-hour "
            "window to free requests (limits() shows the allocation); not retried"
        )
    return ""


def salesforce_error(
    status: int,
    body: Any,
    *,
    operation: str,
    reason: str = "",
) -> ConnectorError:
    """The ConnectorError for a Salesforce error response: its class from the first
    errorCode (then the status), ``details`` holding status, errorCode, fields and every
    item of the array."""
    items = error_items(body)
    first = items[0] if items else SalesforceErrorItem()
    code = first.error_code
    summary = "; ".join(
        f"{i.error_code or 'error'}: {i.message}"
        + (f" (fields: {', '.join(i.fields)})" if i.fields else "")
        for i in items
    ) or (reason or "no error array in the answer")
    message = f"Salesforce refused {operation} ({status} {summary}){_hint(code, first.message)}"
    details: dict[str, Any] = {
        "status": status,
        "errorCode": code,
        "fields": list(first.fields),
        "errors": [i.model_dump(by_alias=True) for i in items],
    }
    cls: type[ConnectorError]
    if code == "REQUEST_LIMIT_EXCEEDED":
        # The daily limit frees requests over hours: retrying in a loop cannot help.
        return RateLimitedError(message, connector="salesforce", transient=False, details=details)
    if code == "INVALID_SESSION_ID" or status == 401:
        cls = AuthenticationError
    elif code in _QUERY_CODES and operation.split()[0] in ("query", "query_all", "count"):
        cls = QueryError
    elif code in _CONFLICT_CODES or status in (300, 409, 412):
        cls = ConflictError
    elif code in _PERMISSION_CODES or status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    else:
        cls = InvalidRequestError
    return cls(message, connector="salesforce", details=details)
