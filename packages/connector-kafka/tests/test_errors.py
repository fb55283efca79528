"""How failures leave the connector: typed errors, the driver's exception chained, only
what a retry can cure retried."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import errors as kafka_errors
from kafka_support import make_config

from connector_core import (
    AuthenticationError,
    ConflictError,
    ConnectionFailedError,
    ConnectorTimeoutError,
    ErrorCode,
    InvalidRequestError,
    LifecycleEvent,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from connector_kafka import KafkaConnector
from connector_kafka._errors import translate_error
from connector_testing import closed_port

pytestmark = pytest.mark.integration


async def test_an_unreachable_broker_is_a_transient_connection_failure() -> None:
    connector = KafkaConnector(
        make_config(
            f"127.0.0.1:{closed_port()}",
            connect_timeout=3.0,
            retry={"max_attempts": 2, "initial_delay": 0.01, "max_delay": 0.02},
        )
    )
    retries: list[Any] = []
    connector.on(LifecycleEvent.RETRY, retries.append)
    with pytest.raises(ConnectionFailedError) as caught:
        await connector.connect()
    assert caught.value.transient
    assert isinstance(caught.value.__cause__, kafka_errors.KafkaConnectionError)
    assert len(retries) == 1  # transient: retried as the policy allows
    assert not connector.is_connected


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_a_refused_sasl_login_is_an_authentication_error_never_retried(
    kafka_bootstrap: str, mechanism: str
) -> None:
    # The broker refuses the SASL handshake on its PLAINTEXT listener.
    connector = KafkaConnector(
        make_config(
            kafka_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_username="svc",
            sasl_password="wrong-password-4e1",
        )
    )
    retries: list[Any] = []
    connector.on(LifecycleEvent.RETRY, retries.append)
    with pytest.raises(AuthenticationError) as caught:
        await connector.connect()
    assert "SASL" in str(caught.value)
    assert not caught.value.transient
    assert isinstance(caught.value.__cause__, kafka_errors.KafkaError)
    assert retries == []


async def test_a_broker_that_does_not_speak_tls_is_refused_for_good(kafka_bootstrap: str) -> None:
    connector = KafkaConnector(
        make_config(kafka_bootstrap, security_protocol="SSL", connect_timeout=5.0)
    )
    with pytest.raises(ConnectionFailedError) as caught:
        await connector.connect()
    assert not caught.value.transient, "a retry cannot make the broker speak TLS"


@pytest.mark.parametrize(
    ("driver_error", "expected", "transient"),
    [
        (kafka_errors.TopicAuthorizationFailedError("orders"), PermissionDeniedError, False),
        (kafka_errors.GroupAuthorizationFailedError(), PermissionDeniedError, False),
        (kafka_errors.TransactionalIdAuthorizationFailed(), PermissionDeniedError, False),
        (kafka_errors.ClusterAuthorizationFailedError(), PermissionDeniedError, False),
        (kafka_errors.SaslAuthenticationFailed(), AuthenticationError, False),
        (kafka_errors.UnknownTopicOrPartitionError(), NotFoundError, False),
        (kafka_errors.MessageSizeTooLargeError(), InvalidRequestError, False),
        (kafka_errors.RecordTooLargeError(), InvalidRequestError, False),
        (kafka_errors.RequestTimedOutError(), ConnectorTimeoutError, True),
        (kafka_errors.KafkaTimeoutError(), ConnectorTimeoutError, True),
        (kafka_errors.KafkaConnectionError(), ConnectionFailedError, True),
        (kafka_errors.NodeNotReadyError(), ConnectionFailedError, True),
        (kafka_errors.TopicAlreadyExistsError(), ConflictError, False),
        (kafka_errors.ProducerFenced(), ConflictError, False),
        (kafka_errors.RebalanceInProgressError(), ConflictError, True),
        (kafka_errors.NotLeaderForPartitionError(), ServiceUnavailableError, True),
        (kafka_errors.NotEnoughReplicasError(), ServiceUnavailableError, True),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_driver_errors_map_onto_typed_errors(
    driver_error: Exception, expected: type[Exception], transient: bool
) -> None:
    # The driver's own exception classes, as the broker's error codes make them (no ACLs
    # or second broker here to provoke all of them for real).
    error = translate_error(driver_error)
    assert isinstance(error, expected)
    assert error.transient is transient
    assert error.code is not ErrorCode.UNKNOWN


async def test_a_message_too_large_for_the_broker_is_an_invalid_request(
    kafka_bootstrap: str, make_topic: Any
) -> None:
    # The client lets it through (max_request_size 4 MB); the topic refuses it (64 KB).
    topic = await make_topic(**{"max.message.bytes": "65536"})
    connector = KafkaConnector(make_config(kafka_bootstrap, max_request_size=4_000_000))
    async with connector:
        with pytest.raises(InvalidRequestError, match=r"(?i)too ?large") as caught:
            await connector.produce(topic, b"x" * 200_000, key="big")
        assert isinstance(caught.value.__cause__, kafka_errors.KafkaError)
        result = await connector.produce_many(topic, [b"small", b"y" * 200_000])
        assert (result.written, [(e.index, e.code) for e in result.errors]) == (
            1,
            [(1, ErrorCode.INVALID_REQUEST)],
        )
