"""MessageCodec: a key serializer and a value serializer, applied to whole messages."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from connector_core import SerializationError
from connector_kafka._messages import KafkaMessage, from_ms
from connector_kafka._serializers import Serializer

K = TypeVar("K")
V = TypeVar("V")


def _failed(part: str, serializer: object, exc: BaseException) -> SerializationError:
    if isinstance(exc, SerializationError):
        return SerializationError(f"{part}: {exc.message}", connector="kafka", details=exc.details)
    return SerializationError(
        f"{part}: {serializer!r} failed ({type(exc).__name__}: {exc})", connector="kafka"
    )


class MessageCodec(Generic[K, V]):
    """Encodes keys and values for the producer and decodes consumed records into
    :class:`KafkaMessage`; every failure is a SerializationError naming the part (key
    or value) and, when decoding, where the message is."""

    __slots__ = ("key_serializer", "value_serializer")

    def __init__(self, key_serializer: Serializer[K], value_serializer: Serializer[V]) -> None:
        self.key_serializer = key_serializer
        self.value_serializer = value_serializer

    def encode_key(self, key: K | None) -> bytes | None:
        if key is None:
            return None
        try:
            return self.key_serializer.serialize(key)
        except Exception as exc:
            error = _failed("key", self.key_serializer, exc)
        raise error

    def encode_value(self, value: V | None) -> bytes | None:
        if value is None:
            return None
        try:
            return self.value_serializer.serialize(value)
        except Exception as exc:
            error = _failed("value", self.value_serializer, exc)
        raise error

    def decode(self, record: Any) -> KafkaMessage[K, V]:
        """The message of an aiokafka ``ConsumerRecord`` (raw key and value bytes)."""
        part = "key"
        try:
            key = None if record.key is None else self.key_serializer.deserialize(record.key)
            part = "value"
            value = (
                None if record.value is None else self.value_serializer.deserialize(record.value)
            )
        except Exception as exc:
            serializer = self.key_serializer if part == "key" else self.value_serializer
            error = _failed(
                f"cannot decode the {part} of message {record.topic}/"
                f"{record.partition}@{record.offset}",
                serializer,
                exc,
            )
            error.details.update(
                topic=record.topic, partition=record.partition, offset=record.offset, part=part
            )
        else:
            return KafkaMessage(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=key,
                value=value,
                headers=tuple(record.headers or ()),
                timestamp=from_ms(record.timestamp),
            )
        raise error
