"""PyMongo's exceptions mapped onto connector_core's typed errors."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from bson.errors import BSONError
from pymongo import errors as mongo_errors

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

NAME = "mongo"

DUPLICATE_KEY_CODES = frozenset({11000, 11001, 12582})
_AUTHENTICATION_CODES = frozenset({18})  # AuthenticationFailed
_PERMISSION_CODES = frozenset({13, 8000})  # Unauthorized, AtlasError (not allowed)
_NOT_FOUND_CODES = frozenset({26})  # NamespaceNotFound
_TIMEOUT_CODES = frozenset({50, 262})  # MaxTimeMSExpired, ExceededTimeLimit
_WRITE_CONCERN_TIMEOUT = 64  # WriteConcernFailed: w not satisfied within wtimeout
# Bad filters, pipelines, updates, options: the request itself is wrong.
_INVALID_CODES = frozenset(
    {
        2,  # BadValue
        9,  # FailedToParse
        14,  # TypeMismatch
        17,  # ProtocolError
        20,  # IllegalOperation
        40,  # ConflictingUpdateOperators
        52,  # DollarPrefixedFieldName
        59,  # CommandNotFound
        67,  # CannotCreateIndex
        72,  # InvalidOptions
        73,  # InvalidNamespace
        85,  # IndexOptionsConflict
        86,  # IndexKeySpecsConflict
        115,  # CommandNotSupported
        238,  # NotImplemented
        15952,  # unknown group operator
        16410,  # FieldPath field names may not start with '$'
        17276,  # use of undefined variable
        31254,  # projection: cannot do exclusion in inclusion projection
        40323,  # a pipeline stage must be an object with one field
        40234,  # unrecognized pipeline stage name (FerretDB)
        40324,  # unrecognized pipeline stage name
        40353,  # FieldPath must not end with a '.'
    }
)
# The server is going away or is not the primary: another member (or the same, back)
# will answer soon.
_UNAVAILABLE_CODES = frozenset({91, 189, 10107, 11600, 11602, 13435, 13436})
_TRANSIENT_LABELS = frozenset(
    {"RetryableWriteError", "TransientTransactionError", "UnknownTransactionCommitResult"}
)


def server_message(details: Mapping[str, Any] | None, fallback: str) -> str:
    """The server's own message of an error document (``errmsg``), else ``fallback``."""
    if details:
        message = details.get("errmsg")
        if isinstance(message, str) and message:
            return message
    return fallback


def _labelled_transient(exc: Any) -> bool:
    has = getattr(exc, "has_error_label", None)
    return callable(has) and any(has(label) for label in _TRANSIENT_LABELS)


def duplicate_key(details: Mapping[str, Any] | None) -> Any:
    """The key of a duplicate key error (``keyValue``; FerretDB omits it: None)."""
    if details:
        return details.get("keyValue")
    return None


def translate_error(exc: BaseException) -> ConnectorError | None:
    """Map a PyMongo, BSON or socket exception to a ConnectorError; None for unknown ones
    (and for ``TimeoutError``: the road's own deadline, which BaseConnector names)."""
    if isinstance(exc, mongo_errors.PyMongoError):
        return _from_pymongo(exc)
    if isinstance(exc, BSONError):
        return SerializationError(
            f"a value cannot be stored as BSON ({type(exc).__name__}: {exc})", connector=NAME
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectionFailedError(
            f"TLS certificate verification failed: {exc.verify_message}",
            connector=NAME,
            transient=False,
        )
    if isinstance(exc, TimeoutError):
        return None  # TimeoutError is an OSError: checked first (decision 0048)
    if isinstance(exc, ConnectionError | OSError | EOFError):
        return ConnectionFailedError(
            f"cannot reach the server ({type(exc).__name__}: {exc})", connector=NAME
        )
    return None


def _from_pymongo(exc: mongo_errors.PyMongoError) -> ConnectorError:
    kind = type(exc).__name__
    if isinstance(exc, mongo_errors.ServerSelectionTimeoutError):
        # No server answered within server_selection_timeout: down, unreachable, or not
        # the replica set asked for. Transient: it may be back on the next call.
        return ConnectionFailedError(
            f"no server available ({_first_line(exc)}): check hosts, replica_set and that "
            "the server runs",
            connector=NAME,
        )
    if isinstance(exc, mongo_errors.NetworkTimeout):
        # A socket timed out: a timeout, not a lost connection (decision 0048). Final,
        # like PostgreSQL's command_timeout: the configured socket_timeout is the caller's
        # budget for an answer, and resending would multiply it (decision 0097).
        return ConnectorTimeoutError(
            f"the server did not answer within socket_timeout ({_first_line(exc)})",
            connector=NAME,
            transient=False,
        )
    if isinstance(exc, mongo_errors.WaitQueueTimeoutError):
        return ConnectorTimeoutError(
            f"no pooled connection became free in time ({_first_line(exc)}): raise pool_max",
            connector=NAME,
        )
    if isinstance(exc, mongo_errors.NotPrimaryError):
        return ServiceUnavailableError(
            f"the server is not the primary ({_first_line(exc)})", connector=NAME
        )
    if isinstance(exc, mongo_errors.ConnectionFailure):
        return ConnectionFailedError(
            f"connection to the server failed ({kind}: {_first_line(exc)})", connector=NAME
        )
    if isinstance(exc, mongo_errors.OperationFailure):
        return _from_operation_failure(exc)
    if isinstance(exc, mongo_errors.InvalidName):
        return InvalidRequestError(f"invalid name: {exc}", connector=NAME)
    if isinstance(exc, mongo_errors.InvalidOperation):
        return NotConnectedError(
            f"the client cannot run this ({exc}): connect() again", connector=NAME
        )
    if isinstance(exc, mongo_errors.ConfigurationError):
        return ConnectionFailedError(
            f"the client configuration was refused ({kind}: {_first_line(exc)})",
            connector=NAME,
            transient=False,
        )
    if isinstance(exc, mongo_errors.ProtocolError):
        return ConnectionFailedError(f"protocol error: {exc}", connector=NAME)
    return ConnectorError(f"MongoDB error: {kind}: {exc}", connector=NAME)


def _from_operation_failure(exc: mongo_errors.OperationFailure) -> ConnectorError:
    details = exc.details if isinstance(exc.details, Mapping) else None
    code = exc.code
    message = server_message(details, _first_line(exc))
    facts: dict[str, Any] = {"code": code, "server_message": message}
    code_name = details.get("codeName") if details else None
    if code_name:
        facts["code_name"] = code_name
    transient = _labelled_transient(exc)
    if isinstance(exc, mongo_errors.WriteConcernError):  # WTimeoutError is one
        if code == _WRITE_CONCERN_TIMEOUT or isinstance(exc, mongo_errors.WTimeoutError):
            return ConnectorTimeoutError(
                f"the write concern was not satisfied in time: {message}",
                connector=NAME,
                details=facts,
            )
        return QueryError(
            f"write concern error: {message}", connector=NAME, transient=transient, details=facts
        )
    if isinstance(exc, mongo_errors.ExecutionTimeout) or code in _TIMEOUT_CODES:
        return ConnectorTimeoutError(
            f"the server stopped the operation at its time limit: {message}",
            connector=NAME,
            details=facts,
        )
    if code in DUPLICATE_KEY_CODES:
        key = duplicate_key(details)
        if key is not None:
            facts["key"] = key
        shown = f" (key {key})" if key is not None else ""
        return ConflictError(f"duplicate key{shown}: {message}", connector=NAME, details=facts)
    if code in _AUTHENTICATION_CODES:
        return AuthenticationError(
            f"the server refused the credentials ({message}): check user, password, "
            "auth_source and auth_mechanism",
            connector=NAME,
            details=facts,
        )
    if code in _PERMISSION_CODES:
        return PermissionDeniedError(f"not authorized: {message}", connector=NAME, details=facts)
    if code in _NOT_FOUND_CODES:
        return NotFoundError(f"not found: {message}", connector=NAME, details=facts)
    if code in _UNAVAILABLE_CODES:
        return ServiceUnavailableError(
            f"the server is unavailable: {message}", connector=NAME, details=facts
        )
    if isinstance(exc, mongo_errors.CursorNotFound):
        return QueryError(
            f"the server forgot the cursor (it timed out or was killed): {message}",
            connector=NAME,
            details=facts,
            transient=True,
        )
    if code in _INVALID_CODES:
        return InvalidRequestError(
            f"the server refused the request: {message}", connector=NAME, details=facts
        )
    return QueryError(
        f"the server refused the operation: {message}",
        connector=NAME,
        transient=transient,
        details=facts,
    )


def _first_line(exc: BaseException) -> str:
    # PyMongo's messages append the whole server reply ("..., full error: {...}") and,
    # for server selection, a topology description: keep the head.
    text = str(exc)
    head = text.split(", full error:", 1)[0]
    head = head.split(", Timeout:", 1)[0]
    return head.splitlines()[0] if head else type(exc).__name__
