"""MessageCodec: a key serializer and a value serializer, applied to whole messages."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from connector_core import SerializationError
from connector_kafka._messages import KafkaMessage
from connector_kafka._serializers import BytesSerializer, Serializer

_new_message = tuple.__new__
_SLICE = 100
"""Records decoded per step of :meth:`MessageCodec.decode_all`."""


def is_plain_bytes(serializer: object) -> bool:
    """Whether ``serializer`` is the bytes serializer itself (not a subclass): its bytes
    are the driver's bytes, so calling it can be skipped."""
    return type(serializer) is BytesSerializer


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

    __slots__ = ("_decode_key", "_decode_value", "key_serializer", "value_serializer")

    def __init__(self, key_serializer: Serializer[K], value_serializer: Serializer[V]) -> None:
        self.key_serializer = key_serializer
        self.value_serializer = value_serializer
        # Bytes stay bytes: skip the call (the consume path runs it per message).
        self._decode_key = not is_plain_bytes(key_serializer)
        self._decode_value = not is_plain_bytes(value_serializer)

    @property
    def plain(self) -> bool:
        """Whether keys and values are bytes both ways (nothing to call per message)."""
        return not self._decode_key and not self._decode_value

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
            key = record.key
            if key is not None and self._decode_key:
                key = self.key_serializer.deserialize(key)
            part = "value"
            value = record.value
            if value is not None and self._decode_value:
                value = self.value_serializer.deserialize(value)
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
            headers = record.headers
            # tuple.__new__ directly: a named tuple's own __new__ is a Python frame, and
            # this runs once per consumed message.
            return _new_message(
                KafkaMessage,
                (
                    record.topic,
                    record.partition,
                    record.offset,
                    key,
                    value,
                    headers if type(headers) is tuple else tuple(headers or ()),
                    record.timestamp,
                ),
            )
        raise error

    def decode_all(self, records: list[Any]) -> list[KafkaMessage[K, V]]:
        """The messages of ``records`` (one fetch of one partition), which this empties:
        each record is freed as soon as its message exists. Raises SerializationError
        at the first record that cannot be decoded (``records`` left as it was); its
        ``details["index"]`` is that record's place in ``records``."""
        if (
            not self._decode_key
            and not self._decode_value
            and records
            and type(records[0].headers) is tuple
        ):
            # Bytes both ways: nothing to call per record. One comprehension, whose
            # attribute reads the interpreter specializes, and topic and partition read
            # once (one partition's records). A slice at a time, deleting the records
            # decoded: a fetch's records and their messages never all live at once, so
            # the allocations stay under the collector's threshold (docs/decisions/0076).
            messages: list[KafkaMessage[K, V]] = []
            extend = messages.extend
            new, message = _new_message, KafkaMessage
            topic, partition = records[0].topic, records[0].partition
            while records:
                extend(
                    [
                        new(
                            message,
                            (topic, partition, r.offset, r.key, r.value, r.headers, r.timestamp),
                        )
                        for r in records[:_SLICE]
                    ]
                )
                del records[:_SLICE]
            return messages
        decode = self.decode
        decoded: list[KafkaMessage[K, V]] = []
        append = decoded.append
        for index, record in enumerate(records):
            try:
                append(decode(record))
            except SerializationError as exc:
                exc.details["index"] = index
                raise
        records.clear()
        return decoded
