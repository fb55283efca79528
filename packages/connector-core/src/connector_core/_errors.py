"""Typed errors. Every driver error leaves a connector as one of these."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    """A stable, machine-readable classification of a failure."""

    CONFIG = "config"
    NOT_CONNECTED = "not_connected"
    CONNECTION_FAILED = "connection_failed"
    AUTHENTICATION = "authentication"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    INVALID_REQUEST = "invalid_request"
    QUERY = "query"
    UNAVAILABLE = "unavailable"
    CIRCUIT_OPEN = "circuit_open"
    SERIALIZATION = "serialization"
    UNKNOWN = "unknown"


class ConnectorError(Exception):
    """Base class of every error a connector raises.

    Attributes:
        code: the :class:`ErrorCode` of the failure.
        transient: whether retrying the same operation later may succeed.
        retry_after: seconds the remote side asked us to wait, when it said so.
        connector: the name of the connector that raised it (``"postgres"``, ...).
        details: small, secret-free extra facts (status, SQLSTATE, request id, ...).

    The driver's exception, when there is one, is chained as ``__cause__``.
    """

    code: ClassVar[ErrorCode] = ErrorCode.UNKNOWN
    default_transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        transient: bool | None = None,
        retry_after: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.connector = connector
        self.transient = self.default_transient if transient is None else transient
        self.retry_after = retry_after
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        prefix = f"[{self.connector}] " if self.connector else ""
        return f"{prefix}{self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code.value!r}, connector={self.connector!r}, "
            f"transient={self.transient}, retry_after={self.retry_after}, message={self.message!r})"
        )


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid configuration field: where it is and what is wrong (never its value)."""

    field: str
    message: str


class ConfigError(ConnectorError):
    """A configuration is invalid. ``errors`` names every bad field; values are never echoed."""

    code = ErrorCode.CONFIG

    def __init__(
        self,
        message: str,
        *,
        errors: Iterable[FieldError] = (),
        connector: str | None = None,
    ) -> None:
        super().__init__(message, connector=connector)
        self.errors: tuple[FieldError, ...] = tuple(errors)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names (dotted paths) of the bad fields."""
        return tuple(e.field for e in self.errors)


class NotConnectedError(ConnectorError):
    """The operation needs a connection: call ``connect()`` (or use ``async with``) first."""

    code = ErrorCode.NOT_CONNECTED


class ConnectionFailedError(ConnectorError):
    """The connection could not be made, or was lost. Transient: a reconnect may cure it."""

    code = ErrorCode.CONNECTION_FAILED
    default_transient = True


class AuthenticationError(ConnectorError):
    """The credentials were rejected. Never retried: fix the credentials."""

    code = ErrorCode.AUTHENTICATION


class PermissionDeniedError(ConnectorError):
    """The credentials are valid but lack the permission for this operation."""

    code = ErrorCode.PERMISSION_DENIED


class NotFoundError(ConnectorError):
    """The stream, table, resource or record does not exist."""

    code = ErrorCode.NOT_FOUND


class ConflictError(ConnectorError):
    """The operation conflicts with the current state (duplicate key, version mismatch)."""

    code = ErrorCode.CONFLICT


class RateLimitedError(ConnectorError):
    """The remote side (or our own limiter) throttled the call; see ``retry_after``."""

    code = ErrorCode.RATE_LIMITED
    default_transient = True


class ConnectorTimeoutError(ConnectorError):
    """The operation did not finish within its timeout. (Named so as not to shadow
    the builtin ``TimeoutError``.)"""

    code = ErrorCode.TIMEOUT
    default_transient = True


class InvalidRequestError(ConnectorError):
    """The remote side rejected the request as malformed (HTTP 400/422 and the like)."""

    code = ErrorCode.INVALID_REQUEST


class QueryError(ConnectorError):
    """The query or command failed on the server (syntax, constraint, type, ...)."""

    code = ErrorCode.QUERY


class ServiceUnavailableError(ConnectorError):
    """The remote side failed or is overloaded (HTTP 5xx, server shutting down). Transient."""

    code = ErrorCode.UNAVAILABLE
    default_transient = True


class CircuitOpenError(ConnectorError):
    """The circuit breaker is open: calls fail fast until ``retry_after`` seconds pass."""

    code = ErrorCode.CIRCUIT_OPEN
    default_transient = True


class SerializationError(ConnectorError):
    """A value could not be encoded for, or decoded from, the remote side."""

    code = ErrorCode.SERIALIZATION


class SchemaChangeError(ConflictError):
    """A stream's field changed type in a way its copy cannot follow (text to integer,
    say): the sync of that stream stops before writing anything of the new shape.

    ``stream`` and ``field`` name where; ``was`` and ``now`` are the portable types (or
    the sink's native type against the source's portable one). Fix the sink (alter or
    drop the column, or start the stream over) and run again."""

    def __init__(
        self,
        message: str,
        *,
        stream: str,
        field: str,
        was: str,
        now: str,
        connector: str | None = None,
    ) -> None:
        details = {"stream": stream, "field": field, "was": was, "now": now}
        super().__init__(message, connector=connector, details=details)
        self.stream, self.field, self.was, self.now = stream, field, was, now


class SyncWriteError(ConnectorError):
    """The sink rejected records of a sync batch: the batch is not checkpointed, so the
    next run writes it again once the cause is fixed. ``errors`` are the sink's
    :class:`~connector_core.RecordError` objects (``index`` in the batch)."""

    code = ErrorCode.INVALID_REQUEST

    def __init__(
        self, message: str, *, errors: Iterable[Any] = (), connector: str | None = None
    ) -> None:
        super().__init__(message, connector=connector)
        self.errors: tuple[Any, ...] = tuple(errors)
