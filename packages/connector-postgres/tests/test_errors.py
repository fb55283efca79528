"""How asyncpg's client-side errors map onto connector_core's typed errors."""

from __future__ import annotations

import asyncio

import asyncpg

from connector_core import (
    ConnectionFailedError,
    ConnectorTimeoutError,
    InvalidRequestError,
    SerializationError,
)
from connector_postgres._errors import DriverTimeoutError, translate_error


def test_a_missing_binary_encoder_is_a_final_serialization_error() -> None:
    exc = asyncpg.exceptions.InternalClientError("no binary format encoder for type json (OID 114)")
    error = translate_error(exc, command_timeout=None)
    assert isinstance(error, SerializationError)
    assert not error.transient
    assert "OID 114" in error.message


def test_only_protocol_state_errors_are_connection_errors() -> None:
    lost = translate_error(
        asyncpg.exceptions.InternalClientError("got result for unknown protocol state 3"),
        command_timeout=None,
    )
    assert isinstance(lost, ConnectionFailedError)
    assert lost.transient
    waiter = translate_error(
        asyncpg.exceptions.InternalClientError("_on_result: waiter is done"), command_timeout=None
    )
    assert isinstance(waiter, ConnectionFailedError)
    switch = translate_error(
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 11; another operation (2) is in progress"
        ),
        command_timeout=None,
    )
    assert isinstance(switch, ConnectionFailedError)
    other = translate_error(
        asyncpg.exceptions.InternalClientError("cannot close prepared statement; refs == 1 != 0"),
        command_timeout=None,
    )
    assert isinstance(other, InvalidRequestError)
    assert not other.transient


def test_timeouts_are_never_lost_connections() -> None:
    # TimeoutError is an OSError: it must not reach the "cannot reach the server" branch.
    operation = TimeoutError()
    operation.__cause__ = asyncio.CancelledError()  # how BaseConnector.run raises its own
    assert type(translate_error(operation, command_timeout=None)) is ConnectorTimeoutError
    statement = translate_error(DriverTimeoutError(), command_timeout=2.0)
    assert type(statement) is ConnectorTimeoutError
    assert statement is not None
    assert "command_timeout=2.0s" in statement.message
    assert not statement.transient
    opening = translate_error(
        DriverTimeoutError("connect timed out", connecting=True), command_timeout=None
    )
    assert type(opening) is ConnectionFailedError
    assert opening.transient
