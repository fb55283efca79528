"""websockets' exceptions and the peer's error envelopes as connector_core errors."""

from __future__ import annotations

from typing import Any

from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    PayloadTooBig,
)

from connector_core import (
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    ConflictError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    ErrorCode,
    InvalidRequestError,
    NotConnectedError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitedError,
    SerializationError,
    ServiceUnavailableError,
)

NAME = "websocket"

# Close codes servers use for a refused login after the handshake (RFC 6455 leaves
# 4000-4999 to applications; 4401/4403 mirror HTTP, 4001/4003 are also common).
AUTH_CLOSE_CODES = frozenset({4001, 4401})
PERMISSION_CLOSE_CODES = frozenset({4003, 4403})

_BY_CODE: dict[str, type[ConnectorError]] = {
    ErrorCode.CONFIG.value: ConfigError,
    ErrorCode.NOT_CONNECTED.value: NotConnectedError,
    ErrorCode.CONNECTION_FAILED.value: ConnectionFailedError,
    ErrorCode.AUTHENTICATION.value: AuthenticationError,
    ErrorCode.PERMISSION_DENIED.value: PermissionDeniedError,
    ErrorCode.NOT_FOUND.value: NotFoundError,
    ErrorCode.CONFLICT.value: ConflictError,
    ErrorCode.RATE_LIMITED.value: RateLimitedError,
    ErrorCode.TIMEOUT.value: ConnectorTimeoutError,
    ErrorCode.INVALID_REQUEST.value: InvalidRequestError,
    ErrorCode.QUERY.value: QueryError,
    ErrorCode.UNAVAILABLE.value: ServiceUnavailableError,
    ErrorCode.CIRCUIT_OPEN.value: CircuitOpenError,
    ErrorCode.SERIALIZATION.value: SerializationError,
}


class RemoteError(ConnectorError):
    """The peer answered a request with an error envelope whose ``code`` is not one of
    connector_core's error codes (a 500 from a handler that failed, say). ``remote_code``
    is that code; the ``message`` is the peer's. A code that is one of ours (``not_found``,
    ``rate_limited``, ...) raises that class instead, with ``details["remote"] = True``."""

    def __init__(self, message: str, *, remote_code: str | int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.remote_code = remote_code


def remote_error(request: str, code: Any, message: Any) -> ConnectorError:
    """The error an error envelope stands for."""
    text = f"{request}: the peer answered {code}: {message}"
    details = {"remote": True, "request": request, "remote_code": code}
    cls = _BY_CODE.get(code) if isinstance(code, str) else None
    if cls is ConfigError or cls is None:
        remote_code = code if isinstance(code, str | int) else str(code)
        return RemoteError(text, remote_code=remote_code, connector=NAME, details=details)
    return cls(text, connector=NAME, details=details)


def closed_error(exc: ConnectionClosed) -> ConnectorError:
    """A lost connection: typed by the close code the server sent."""
    close = exc.rcvd
    if close is not None and close.code in AUTH_CLOSE_CODES:
        return AuthenticationError(
            f"the server refused the login: close {close.code} {close.reason}", connector=NAME
        )
    if close is not None and close.code in PERMISSION_CLOSE_CODES:
        return PermissionDeniedError(
            f"the server refused access: close {close.code} {close.reason}", connector=NAME
        )
    return ConnectionFailedError(f"connection lost: {exc}", connector=NAME)


def translate_error(exc: BaseException) -> ConnectorError | None:
    """websockets' exception as a ConnectorError (None: the core's generic mapping)."""
    if isinstance(exc, ConnectionClosed):
        return closed_error(exc)
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        text = f"the server refused the handshake: HTTP {status}"
        if status == 401:
            return AuthenticationError(text, connector=NAME, details={"status": status})
        if status == 403:
            return PermissionDeniedError(text, connector=NAME, details={"status": status})
        if status == 404:
            return NotFoundError(text, connector=NAME, details={"status": status})
        if status == 429:
            retry_after = _retry_after(exc.response.headers.get("Retry-After"))
            return RateLimitedError(
                text, connector=NAME, retry_after=retry_after, details={"status": status}
            )
        if status >= 500:
            return ServiceUnavailableError(text, connector=NAME, details={"status": status})
        return InvalidRequestError(text, connector=NAME, details={"status": status})
    if isinstance(exc, InvalidURI):
        return ConfigError(f"invalid WebSocket URL: {exc}", connector=NAME)
    if isinstance(exc, InvalidMessage):
        # The server closed or garbled the handshake (often: not a WebSocket server).
        return ConnectionFailedError(f"handshake failed: {exc}", connector=NAME)
    if isinstance(exc, InvalidHandshake):
        return ConnectionFailedError(
            f"handshake failed: {type(exc).__name__}: {exc}", connector=NAME, transient=False
        )
    if isinstance(exc, PayloadTooBig):
        return InvalidRequestError(f"message too big: {exc}", connector=NAME)
    return None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
