"""asyncpg's exceptions mapped onto connector_core's typed errors."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

from connector_core import (
    AuthenticationError,
    ConflictError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    InvalidRequestError,
    NotConnectedError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    SerializationError,
    ServiceUnavailableError,
)

NAME = "postgres"


class TransactionRollbackError(QueryError):
    """The server rolled the transaction back to keep it consistent: a serialization
    failure (SQLSTATE 40001) or a deadlock (40P01). Transient: run the whole
    transaction again."""

    default_transient = True


# SQLSTATEs (or their two-character classes) and the error type they become.
_BY_SQLSTATE: dict[str, type[ConnectorError]] = {
    "23505": ConflictError,
    "23P01": ConflictError,  # exclusion violation: a conflict like a unique one
    "40001": TransactionRollbackError,
    "40P01": TransactionRollbackError,
    "42501": PermissionDeniedError,
    "42P01": NotFoundError,
    "3F000": NotFoundError,  # invalid schema name
    "3D000": NotFoundError,  # database does not exist
    "57014": ConnectorTimeoutError,  # query canceled (statement_timeout, cancel request)
    "57P01": ConnectionFailedError,  # admin shutdown / pg_terminate_backend
    "57P02": ConnectionFailedError,  # crash shutdown
    "57P03": ConnectionFailedError,  # cannot connect now (starting up, shutting down)
    "55P03": QueryError,  # lock not available: transient below
}
_BY_CLASS: dict[str, type[ConnectorError]] = {
    "08": ConnectionFailedError,
    "28": AuthenticationError,
    "53": ServiceUnavailableError,  # insufficient resources (too many connections, disk full)
}
_TRANSIENT_SQLSTATES = frozenset({"55P03"})
# statement_timeout or a cancel request: the caller's time budget ran out; not retried.
_FINAL_SQLSTATES = frozenset({"57014"})
_DETAIL_FIELDS = (
    "detail",
    "hint",
    "context",
    "schema_name",
    "table_name",
    "column_name",
    "constraint_name",
)
_CLOSED_MARKERS = (
    "connection is closed",
    "connection was closed",
    "closed in the middle",
    # asyncpg gives a closed connection back to its pool at once; a transaction still
    # holding it then hears this.
    "released back to the pool",
)


def connection_closed(exc: BaseException) -> bool:
    """Whether a driver exception says the connection in hand was found closed (the
    server or the network dropped it since it was last used)."""
    if isinstance(exc, asyncpg.PostgresConnectionError):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and any(
        marker in str(exc) for marker in _CLOSED_MARKERS
    )


def sqlstate_details(exc: asyncpg.PostgresError) -> dict[str, Any]:
    """The server's diagnostic fields worth keeping (never the statement's arguments)."""
    details: dict[str, Any] = {"sqlstate": exc.sqlstate, "server_message": exc.args[0]}
    for key in _DETAIL_FIELDS:
        value = getattr(exc, key, None)
        if value:
            details[key] = value
    return details


def translate_error(exc: BaseException, *, command_timeout: float | None) -> ConnectorError | None:
    """Map an asyncpg (or socket) exception to a ConnectorError; None for unknown ones."""
    if isinstance(exc, asyncpg.PostgresError):
        return _from_server(exc)
    if isinstance(exc, asyncpg_base.DataError):
        # Raised client-side while encoding an argument: the value does not fit the type.
        return SerializationError(f"cannot encode a value: {exc}", connector=NAME)
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return _from_internal(exc)
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        if any(marker in text for marker in _CLOSED_MARKERS):
            return ConnectionFailedError(f"connection lost: {text}", connector=NAME)
        if "pool is closing" in text or "pool is closed" in text:
            return NotConnectedError(
                "the connection pool is closed: call connect() again", connector=NAME
            )
        return InvalidRequestError(f"invalid use of the driver: {text}", connector=NAME)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectionFailedError(
            f"TLS certificate verification failed: {exc.verify_message}",
            connector=NAME,
            transient=False,
        )
    if isinstance(exc, TimeoutError):
        # Before the OSError branch below: TimeoutError is an OSError, and a deadline that
        # ran out is not a lost connection.
        return _from_timeout(exc, command_timeout)
    if isinstance(exc, ConnectionError) and "rejected SSL upgrade" in str(exc):
        # sslmode require/verify-* and a server without TLS: a retry cannot change that.
        return ConnectionFailedError(
            "the server does not accept TLS: use sslmode=prefer or disable, or turn "
            "ssl on in the server",
            connector=NAME,
            transient=False,
        )
    if isinstance(exc, (ConnectionError, OSError, EOFError)):
        return ConnectionFailedError(
            f"cannot reach the server ({type(exc).__name__}: {exc})", connector=NAME
        )
    return None


class DriverTimeoutError(TimeoutError):
    """Internal: a deadline of the driver's own ran out inside a driver call (never
    raised to users: :func:`translate_error` turns it into a ConnectorError).

    Inside a call the operation's timeout arrives as a CancelledError; it becomes a
    TimeoutError only where ``BaseConnector.run`` catches it. So a TimeoutError caught
    *inside* a call is the driver's: ``command_timeout``, a bulk deadline, or the
    ``connect_timeout`` of a connection being opened (``connecting=True``). The wrappers
    around driver calls (``guarded``, the connection openers) mark it with this class so
    that translation needs no guessing. ``message`` None: the statement's
    ``command_timeout``.
    """

    def __init__(self, message: str | None = None, *, connecting: bool = False) -> None:
        super().__init__(message or "statement timeout")
        self.message = message
        self.connecting = connecting


def _from_timeout(exc: TimeoutError, command_timeout: float | None) -> ConnectorError:
    if isinstance(exc, DriverTimeoutError):
        if exc.connecting:  # as BaseConnector treats a connect that timed out: transient
            return ConnectionFailedError(exc.message or "connect timed out", connector=NAME)
        if exc.message:
            return ConnectorTimeoutError(exc.message, connector=NAME, transient=False)
    elif isinstance(exc.__cause__, asyncio.CancelledError):
        # The operation's own deadline (BaseConnector.run names it: "query timed out
        # after 1.0s"); transient, as BaseConnector makes every operation timeout.
        return ConnectorTimeoutError("operation timed out", connector=NAME)
    # The driver's per-statement deadline. Not retried: the budget is the caller's, and
    # a retry would multiply it.
    budget = f"command_timeout={command_timeout}s" if command_timeout else "its timeout"
    return ConnectorTimeoutError(
        f"statement did not finish within {budget}", connector=NAME, transient=False
    )


# InternalClientError messages that mean the protocol lost track of the connection's
# state (it died under a statement): the connection is unusable, a retry gets another.
_PROTOCOL_STATE_MARKERS = (
    "waiter",
    "protocol state",
    "protocol error",
    "statement is None",
    "cannot switch to state",
)
# ... and those that are about a value's type: no codec for it in the needed format.
_CODEC_MARKERS = ("encoder", "decoder", "codec", "data format", "exchange format")


def _from_internal(exc: asyncpg.exceptions.InternalClientError) -> ConnectorError:
    text = str(exc)
    if any(marker in text for marker in _CODEC_MARKERS):
        return SerializationError(
            f"cannot encode or decode a value: {text}", connector=NAME, transient=False
        )
    if any(marker in text for marker in _PROTOCOL_STATE_MARKERS):
        return ConnectionFailedError(f"connection lost: {text}", connector=NAME)
    return InvalidRequestError(f"driver error: {text}", connector=NAME, transient=False)


def _from_server(exc: asyncpg.PostgresError) -> ConnectorError:
    state = exc.sqlstate or ""
    kind = _BY_SQLSTATE.get(state) or _BY_CLASS.get(state[:2]) or QueryError
    message = f"{exc.args[0]} (SQLSTATE {state})" if exc.args else f"SQLSTATE {state}"
    return kind(
        message,
        connector=NAME,
        details=sqlstate_details(exc),
        transient=_transient(state),
    )


def _transient(state: str) -> bool | None:
    if state in _TRANSIENT_SQLSTATES:
        return True
    if state in _FINAL_SQLSTATES:
        return False
    return None


# The server no longer has what a cached catalog look-up said: an undefined table or
# column, or a row type that changed under a prepared statement.
_STALE_CATALOG_SQLSTATES = frozenset({"42P01", "42703"})


def is_stale_catalog(error: ConnectorError) -> bool:
    """Whether ``error`` says the table or columns a call was built from have changed
    (dropped, renamed, retyped), so its catalog look-up should be refreshed."""
    if str(error.details.get("sqlstate", "")) in _STALE_CATALOG_SQLSTATES:
        return True
    cause = error.__cause__
    return isinstance(
        cause,
        (
            asyncpg.exceptions.InvalidCachedStatementError,
            asyncpg.exceptions.OutdatedSchemaCacheError,
        ),
    )
