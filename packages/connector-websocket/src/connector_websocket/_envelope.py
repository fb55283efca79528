"""The request/response envelope: what goes over the socket, and its JSON Schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Final

SUCCESS: Final = "success"
ERROR: Final = "error"
INTERNAL_ERROR_CODE: Final = 500
"""The ``code`` of an error envelope when the handler raised something else than a
ConnectorError."""
MAX_NAME_LENGTH: Final = 256

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode(message: dict[str, Any]) -> str:
    """One envelope as JSON text. Raises TypeError/ValueError when it is not JSON."""
    return _encode(message)


def request_message(request: str, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"request": request, "request_id": request_id, "body": body}


def success_message(request: str, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"status": SUCCESS, "request": request, "request_id": request_id, "body": body}


def error_message(request: str, request_id: str, code: str | int, message: str) -> dict[str, Any]:
    return {
        "status": ERROR,
        "request": request,
        "request_id": request_id,
        "code": code,
        "message": message,
    }


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """A request the peer sent: answer it with ``send_message`` or ``send_error``."""

    request: str
    request_id: str
    body: dict[str, Any]


def as_request(message: Any) -> IncomingRequest | str:
    """``message`` (decoded JSON) as a request, or the reason it is not one."""
    if not isinstance(message, dict):
        return "not a JSON object"
    request, request_id, body = (
        message.get("request"),
        message.get("request_id"),
        message.get("body", {}),
    )
    if not isinstance(request, str) or not 0 < len(request) <= MAX_NAME_LENGTH:
        return "'request' must be a non-empty string"
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_NAME_LENGTH:
        return "'request_id' must be a non-empty string"
    if not isinstance(body, dict):
        return "'body' must be a JSON object"
    return IncomingRequest(request, request_id, body)


@cache
def _schema_text() -> str:
    return files("connector_websocket").joinpath("envelope.schema.json").read_text("utf-8")


def envelope_schema() -> dict[str, Any]:
    """The envelope's JSON Schema (draft 2020-12): a request, a success or an error
    (a new copy each call)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema
