"""aiokafka's exceptions mapped onto connector_core's typed errors."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import errors as kafka_errors  # type: ignore[import-untyped]

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
    ServiceUnavailableError,
)

NAME = "kafka"

_AUTHENTICATION: tuple[type[Any], ...] = (
    kafka_errors.SaslAuthenticationFailed,
    kafka_errors.AuthenticationFailedError,
    kafka_errors.AuthenticationMethodNotSupported,
    kafka_errors.UnsupportedSaslMechanismError,
    kafka_errors.IllegalSaslStateError,
)
_PERMISSION: tuple[type[Any], ...] = (
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.GroupAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.TransactionalIdAuthorizationFailed,
    kafka_errors.DelegationTokenAuthorizationFailed,
)
_NOT_FOUND: tuple[type[Any], ...] = (
    kafka_errors.UnknownTopicOrPartitionError,
    kafka_errors.GroupIdNotFound,
)
_INVALID: tuple[type[Any], ...] = (
    kafka_errors.IllegalArgumentError,
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidTopicError,
    kafka_errors.InvalidPartitionsError,
    kafka_errors.InvalidReplicationFactorError,
    kafka_errors.InvalidReplicationAssignmentError,
    kafka_errors.InvalidConfigurationError,
    kafka_errors.PolicyViolationError,
    kafka_errors.InvalidRequestError,
    kafka_errors.InvalidTimestampError,
    kafka_errors.InvalidRequiredAcksError,
    kafka_errors.InvalidTransactionTimeout,
    kafka_errors.InvalidSessionTimeoutError,
    kafka_errors.InvalidGroupIdError,
    kafka_errors.UnsupportedVersionError,
    kafka_errors.UnsupportedForMessageFormatError,
    kafka_errors.UnsupportedCodecError,
    kafka_errors.IllegalOperation,
    kafka_errors.IllegalStateError,
    kafka_errors.InvalidTxnState,
    kafka_errors.OffsetMetadataTooLargeError,
    kafka_errors.InvalidCommitOffsetSizeError,
)
# Another member or producer owns what this call needed: the group moved on (a
# rebalance), or a newer producer took over the transactional id.
_CONFLICT: tuple[type[Any], ...] = (
    kafka_errors.TopicAlreadyExistsError,
    kafka_errors.ProducerFenced,
    kafka_errors.InvalidProducerEpoch,
    kafka_errors.CommitFailedError,
    kafka_errors.IllegalGenerationError,
    kafka_errors.UnknownMemberIdError,
    kafka_errors.RebalanceInProgressError,
    kafka_errors.NonEmptyGroup,
    kafka_errors.ConcurrentTransactions,
)
_CONNECTION: tuple[type[Any], ...] = (
    kafka_errors.KafkaConnectionError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.NoBrokersAvailable,
    kafka_errors.KafkaUnavailableError,
    kafka_errors.BrokerNotAvailableError,
)
_TIMEOUT: tuple[type[Any], ...] = (
    kafka_errors.KafkaTimeoutError,
    kafka_errors.RequestTimedOutError,
)
_TRANSIENT_CONFLICTS: tuple[type[Any], ...] = (
    kafka_errors.RebalanceInProgressError,
    kafka_errors.ConcurrentTransactions,
)


def _described(exc: BaseException) -> str:
    """What an aiokafka exception says: its class and its own message (broker errors
    carry a standard description; ``str()`` of some holds a connection's repr)."""
    kind = type(exc).__name__
    message = getattr(exc, "message", None)
    text = str(exc)
    if kind in text:  # "[Error 3] UnknownTopicOrPartitionError: ..." names itself
        return text
    if isinstance(message, str) and message and message not in text:
        return f"{kind} ({message}): {text}" if text else f"{kind} ({message})"
    return f"{kind}: {text}" if text else kind


def translate_error(exc: BaseException) -> ConnectorError | None:
    """Map an aiokafka (or socket) exception to a ConnectorError; None for unknown ones."""
    if isinstance(exc, kafka_errors.KafkaError):
        return _from_kafka(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectionFailedError(
            f"TLS certificate verification failed: {exc.verify_message}",
            connector=NAME,
            transient=False,
        )
    if isinstance(exc, ssl.SSLError):
        return ConnectionFailedError(
            f"TLS handshake failed ({exc.reason or type(exc).__name__}): check "
            "security_protocol and the broker's listener",
            connector=NAME,
            transient=False,
        )
    if isinstance(exc, TimeoutError):
        return None  # the road's own deadline: BaseConnector names it
    if isinstance(exc, ConnectionError | OSError | EOFError):
        return ConnectionFailedError(
            f"cannot reach the broker ({type(exc).__name__}: {exc})", connector=NAME
        )
    return None


def _from_kafka(exc: Any) -> ConnectorError:
    what = _described(exc)
    if isinstance(exc, _AUTHENTICATION):
        return AuthenticationError(
            f"the broker refused SASL authentication ({what}): check sasl_username, "
            "sasl_password, sasl_mechanism and that the listener speaks "
            "security_protocol",
            connector=NAME,
        )
    if isinstance(exc, _PERMISSION):
        return PermissionDeniedError(f"not authorized: {what}", connector=NAME)
    if isinstance(exc, _NOT_FOUND):
        return NotFoundError(f"not found: {what}", connector=NAME)
    if isinstance(exc, kafka_errors.ConsumerStoppedError):
        return NotConnectedError("the consumer is stopped", connector=NAME)
    if isinstance(exc, kafka_errors.ProducerClosed):
        return NotConnectedError("the producer is closed: connect() again", connector=NAME)
    if isinstance(exc, _INVALID):
        return InvalidRequestError(f"refused: {what}", connector=NAME)
    if isinstance(exc, _CONFLICT):
        return ConflictError(
            f"conflict: {what}", connector=NAME, transient=isinstance(exc, _TRANSIENT_CONFLICTS)
        )
    if isinstance(exc, _TIMEOUT):
        return ConnectorTimeoutError(f"the broker did not answer in time: {what}", connector=NAME)
    if isinstance(exc, _CONNECTION):
        return ConnectionFailedError(f"cannot reach the broker: {what}", connector=NAME)
    if getattr(exc, "retriable", False):
        # Leader elections, coordinators moving, too few in-sync replicas: the cluster
        # is busy with itself and answers again soon.
        return ServiceUnavailableError(f"the cluster is not ready: {what}", connector=NAME)
    return ConnectorError(f"Kafka error: {what}", connector=NAME)


class HandlerError(ConnectorError):
    """A :meth:`KafkaConnector.process` handler raised, or ran past its
    ``handler_timeout``; the handler's exception is the ``__cause__``. Transient: the
    handler is tried again (see :class:`DeadLetter`)."""

    default_transient = True
