"""Typed errors: codes, transient defaults, str/repr, chaining."""

from __future__ import annotations

import pytest

import connector_core
from connector_core import (
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    ConflictError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    ErrorCode,
    FieldError,
    InvalidRequestError,
    NotConnectedError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitedError,
    SchemaChangeError,
    SerializationError,
    ServiceUnavailableError,
    SyncWriteError,
)

EXPECTED: list[tuple[type[ConnectorError], ErrorCode, bool]] = [
    (ConnectorError, ErrorCode.UNKNOWN, False),
    (ConfigError, ErrorCode.CONFIG, False),
    (NotConnectedError, ErrorCode.NOT_CONNECTED, False),
    (ConnectionFailedError, ErrorCode.CONNECTION_FAILED, True),
    (AuthenticationError, ErrorCode.AUTHENTICATION, False),
    (PermissionDeniedError, ErrorCode.PERMISSION_DENIED, False),
    (NotFoundError, ErrorCode.NOT_FOUND, False),
    (ConflictError, ErrorCode.CONFLICT, False),
    (RateLimitedError, ErrorCode.RATE_LIMITED, True),
    (ConnectorTimeoutError, ErrorCode.TIMEOUT, True),
    (InvalidRequestError, ErrorCode.INVALID_REQUEST, False),
    (QueryError, ErrorCode.QUERY, False),
    (ServiceUnavailableError, ErrorCode.UNAVAILABLE, True),
    (CircuitOpenError, ErrorCode.CIRCUIT_OPEN, True),
    (SerializationError, ErrorCode.SERIALIZATION, False),
    (SyncWriteError, ErrorCode.INVALID_REQUEST, False),
]


@pytest.mark.parametrize(("cls", "code", "transient"), EXPECTED, ids=lambda v: str(v))
def test_code_and_transient_default(
    cls: type[ConnectorError], code: ErrorCode, transient: bool
) -> None:
    error = cls("something happened")
    assert isinstance(error, ConnectorError)
    assert error.code is code
    assert error.transient is transient
    assert error.retry_after is None


def test_every_exported_error_class_is_covered() -> None:
    exported = {
        obj
        for name in connector_core.__all__
        if isinstance(obj := getattr(connector_core, name), type)
        and issubclass(obj, ConnectorError)
    }
    # SchemaChangeError takes where and what changed: its own test below.
    covered = {cls for cls, _, _ in EXPECTED} | {
        connector_core.ConnectorNotInstalledError,
        SchemaChangeError,
    }
    assert exported == covered


def test_every_error_code_has_an_error_class() -> None:
    assert {code for _, code, _ in EXPECTED} == set(ErrorCode)


def test_timeout_error_does_not_shadow_the_builtin() -> None:
    assert not hasattr(connector_core, "TimeoutError")
    assert not issubclass(ConnectorTimeoutError, TimeoutError)


def test_transient_can_be_overridden() -> None:
    assert QueryError("deadlock detected", transient=True).transient is True
    assert ConnectionFailedError("refused for good", transient=False).transient is False


def test_str_prefixes_the_connector_name() -> None:
    error = NotFoundError("table 'users' not found", connector="postgres")
    assert str(error) == "[postgres] table 'users' not found"
    assert str(NotFoundError("plain")) == "plain"


def test_repr_shows_code_connector_transient_and_retry_after() -> None:
    error = RateLimitedError("slow down", connector="http", retry_after=2.5)
    assert repr(error) == (
        "RateLimitedError(code='rate_limited', connector='http', transient=True, "
        "retry_after=2.5, message='slow down')"
    )


def test_details_are_copied() -> None:
    details = {"status": 503}
    error = ServiceUnavailableError("down", details=details)
    details["status"] = 200
    assert error.details == {"status": 503}


def test_config_error_names_its_fields() -> None:
    error = ConfigError(
        "bad", errors=[FieldError("port", "too big"), FieldError("retry.max_attempts", "< 1")]
    )
    assert error.fields == ("port", "retry.max_attempts")
    assert error.code is ErrorCode.CONFIG


def test_field_error_is_frozen() -> None:
    field_error = FieldError("port", "too big")
    with pytest.raises(AttributeError):
        field_error.field = "host"  # type: ignore[misc]


def test_schema_change_error_names_the_stream_field_and_types() -> None:
    error = SchemaChangeError("changed", stream="users", field="age", was="string", now="integer")
    assert isinstance(error, ConflictError)
    assert error.code is ErrorCode.CONFLICT
    assert not error.transient
    assert (error.stream, error.field, error.was, error.now) == (
        "users",
        "age",
        "string",
        "integer",
    )
    assert error.details == {"stream": "users", "field": "age", "was": "string", "now": "integer"}
