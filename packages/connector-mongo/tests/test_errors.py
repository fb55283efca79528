"""PyMongo's exceptions as connector_core's typed errors (unit tests of the mapping: the
server cannot be made to raise each of them), and a few for real."""

from __future__ import annotations

import pytest
from pymongo import errors

from connector_core import (
    AuthenticationError,
    ConflictError,
    ConnectionFailedError,
    ConnectorTimeoutError,
    InvalidRequestError,
    NotConnectedError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    SerializationError,
    ServiceUnavailableError,
)
from connector_mongo import MongoConnector
from connector_mongo._errors import translate_error


def failure(code: int, message: str = "refused", **extra: object) -> errors.OperationFailure:
    return errors.OperationFailure(message, code, {"errmsg": message, "code": code, **extra})


@pytest.mark.parametrize(
    ("exc", "kind", "transient"),
    [
        (errors.ServerSelectionTimeoutError("no servers"), ConnectionFailedError, True),
        (errors.AutoReconnect("connection closed"), ConnectionFailedError, True),
        (errors.NetworkTimeout("timed out"), ConnectorTimeoutError, False),  # final (0097)
        (errors.WaitQueueTimeoutError("pool"), ConnectorTimeoutError, True),
        (errors.NotPrimaryError("not primary"), ServiceUnavailableError, True),
        (failure(18, "Authentication failed."), AuthenticationError, False),
        (failure(13, "not authorized on db"), PermissionDeniedError, False),
        (failure(26, "ns not found"), NotFoundError, False),
        (failure(50, "operation exceeded time limit"), ConnectorTimeoutError, True),
        (failure(2, "unknown operator: $foo"), InvalidRequestError, False),
        (failure(40324, "Unrecognized pipeline stage"), InvalidRequestError, False),
        (failure(91, "shutdown in progress"), ServiceUnavailableError, True),
        (failure(112, "write conflict"), QueryError, False),
        (
            failure(112, "write conflict", errorLabels=["TransientTransactionError"]),
            QueryError,
            True,
        ),
        (errors.DuplicateKeyError("E11000", 11000, {"keyValue": {"_id": 1}}), ConflictError, False),
        (errors.WTimeoutError("waiting for replication", 64, {}), ConnectorTimeoutError, True),
        (
            errors.WriteConcernError(
                "not enough members", 100, {"errorLabels": ["RetryableWriteError"]}
            ),
            QueryError,
            True,
        ),
        (errors.CursorNotFound("cursor id not found", 43, {}), QueryError, True),
        (errors.InvalidOperation("cannot use after close"), NotConnectedError, False),
        (errors.InvalidDocument("key must not contain NUL"), SerializationError, False),
        (ConnectionResetError("reset by peer"), ConnectionFailedError, True),
    ],
)
def test_driver_errors_map_to_typed_errors(exc: BaseException, kind: type, transient: bool) -> None:
    error = translate_error(exc)
    assert type(error) is kind, repr(error)
    assert error is not None
    assert error.transient is transient
    assert error.connector == "mongo"


def test_a_timeout_is_never_a_lost_connection() -> None:
    # TimeoutError is an OSError: left to the road, which names it a timeout (0048).
    assert translate_error(TimeoutError()) is None
    assert isinstance(translate_error(errors.NetworkTimeout("x")), ConnectorTimeoutError)


def test_a_duplicate_key_carries_the_key() -> None:
    error = translate_error(
        errors.DuplicateKeyError(
            "E11000 dup",
            11000,
            {"errmsg": "E11000 dup", "code": 11000, "keyValue": {"email": "a@b"}},
        )
    )
    assert isinstance(error, ConflictError)
    assert error.details["key"] == {"email": "a@b"}
    assert "email" in str(error)


def test_server_messages_are_kept_without_the_full_reply() -> None:
    error = translate_error(failure(2, "unknown top level operator: $foo"))
    assert error is not None
    assert error.details["server_message"] == "unknown top level operator: $foo"
    assert "full error" not in error.message


@pytest.mark.integration
async def test_an_unknown_command_is_an_invalid_request_with_the_cause(
    mongo: MongoConnector,
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await mongo.command({"noSuchCommand": 1})
    assert isinstance(caught.value.__cause__, errors.OperationFailure)
    assert caught.value.details["code"] == 59


@pytest.mark.integration
async def test_an_operation_before_connect_is_not_connected(mongo_url: str) -> None:
    from mongo_support import make_config

    connector = MongoConnector(make_config(mongo_url))
    with pytest.raises(NotConnectedError):
        await connector.count("anything")
    with pytest.raises(NotConnectedError):
        connector.find("anything")
