"""The typed values the connector hands out: messages, delivery reports, partitions, lag."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeAlias, TypeVar

from connector_core import InvalidRequestError

K = TypeVar("K")
V = TypeVar("V")

Headers: TypeAlias = Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]]
"""Message headers as given: a mapping, or (name, value) pairs (names may repeat)."""
Timestamp: TypeAlias = dt.datetime | int | float
"""A message timestamp: an aware datetime, or milliseconds since the epoch."""


class TopicPartition(NamedTuple):
    """One partition of a topic."""

    topic: str
    partition: int


class KafkaMessage(NamedTuple, Generic[K, V]):
    """A consumed message: where it is (topic, partition, offset), its key and value
    (deserialized; None for Kafka's null), headers in order, and its timestamp (epoch
    milliseconds; ``timestamp`` as an aware datetime). Immutable; a named tuple, so that
    consuming one costs a fraction of a microsecond (docs/decisions/0069)."""

    topic: str
    partition: int
    offset: int
    key: K | None
    value: V | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int

    @property
    def timestamp(self) -> dt.datetime | None:
        """The message's timestamp as an aware UTC datetime (None when it has none)."""
        return from_ms(self.timestamp_ms)

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name``, or None."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What the broker acknowledged: where the message was written, and its timestamp
    (the broker's with LogAppendTime topics). With ``acks=0`` the broker answers nothing:
    partition and offset are -1 and the timestamp None."""

    topic: str
    partition: int
    offset: int
    timestamp: dt.datetime | None


@dataclass(frozen=True, slots=True)
class OutgoingMessage(Generic[K, V]):
    """One message for :meth:`KafkaConnector.produce_many`: a value and, optionally, a
    key, headers, a partition (else chosen by the key's hash) and a timestamp."""

    value: V | None
    key: K | None = None
    headers: Headers | None = None
    partition: int | None = None
    timestamp: Timestamp | None = None


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """How far a consumer (or group) is behind one partition: ``lag`` messages between
    its position (or committed offset; None when it has none) and the end."""

    topic: str
    partition: int
    position: int | None
    end_offset: int
    lag: int


def encode_headers(headers: Headers | None) -> list[tuple[str, bytes]]:
    """Headers as the driver takes them: (str, bytes) pairs, text values in UTF-8.

    Raises InvalidRequestError for a name that is not text or a value that is neither
    text nor bytes."""
    if not headers:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    encoded: list[tuple[str, bytes]] = []
    for pair in pairs:
        problem: str | None
        try:
            name, value = pair
        except (TypeError, ValueError):
            problem = "headers are a mapping or (name, value) pairs"
        else:
            problem = None
            if not isinstance(name, str):
                problem = f"a header name must be str, not {type(name).__name__}"
            elif isinstance(value, str):
                try:
                    encoded.append((name, value.encode()))
                except UnicodeEncodeError:
                    problem = f"header {name!r} is not valid UTF-8 text"
            elif isinstance(value, bytes | bytearray | memoryview):
                encoded.append((name, bytes(value)))
            else:
                problem = f"header {name!r} must be str or bytes, not {type(value).__name__}"
        if problem is not None:
            raise InvalidRequestError(problem, connector="kafka")
    return encoded


def timestamp_ms(value: Timestamp | None) -> int | None:
    """``value`` as milliseconds since the epoch; InvalidRequestError for a naive
    datetime or a negative time."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise InvalidRequestError(
                "a message timestamp must be an aware datetime (with tzinfo)", connector="kafka"
            )
        millis = round(value.timestamp() * 1000)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(
            "a message timestamp is an aware datetime or milliseconds since the epoch",
            connector="kafka",
        )
    else:
        millis = int(value)
    if millis < 0:
        raise InvalidRequestError("a message timestamp cannot be before 1970", connector="kafka")
    return millis


def from_ms(millis: Any) -> dt.datetime | None:
    """An aware UTC datetime for a Kafka timestamp (None for -1 or none)."""
    if not isinstance(millis, int) or millis < 0:
        return None
    return dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
