"""What discover() says about a topic: its partitions, and fields inferred from messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from connector_core import FieldType, Stream, StreamField
from connector_core.sync import field_type_of
from connector_kafka._messages import KafkaMessage


class TopicStream(Stream):
    """A topic as a stream: ``fields`` are inferred from sampled JSON values (empty
    when values are not JSON), ``primary_key`` names the value fields that always hold
    the message key, ``estimated_count`` counts the messages the topic retains."""

    kind: str = "topic"
    partitions: int = 0
    replication_factor: int = 0


def _as_object(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, BaseModel):
        dumped: dict[str, Any] = value.model_dump(mode="json")
        return dumped
    if isinstance(value, Mapping):
        return value
    return None


def infer_fields(values: Sequence[Mapping[str, Any]]) -> tuple[StreamField, ...]:
    """Fields of JSON objects, in the order first seen: a field absent from some or
    null in some is nullable; integers and floats together are numbers; other mixes
    are JSON."""
    seen: dict[str, set[FieldType]] = {}
    present: dict[str, int] = {}
    nulls: set[str] = set()
    for value in values:
        for name, item in value.items():
            kinds = seen.setdefault(name, set())
            present[name] = present.get(name, 0) + 1
            if item is None:
                nulls.add(name)
            else:
                kinds.add(field_type_of(item))
    fields = []
    for name, kinds in seen.items():
        if not kinds:
            kind = FieldType.UNKNOWN
        elif len(kinds) == 1:
            (kind,) = kinds
        elif kinds == {FieldType.INTEGER, FieldType.NUMBER}:
            kind = FieldType.NUMBER
        else:
            kind = FieldType.JSON
        nullable = name in nulls or present[name] < len(values)
        fields.append(StreamField(name=name, type=kind, nullable=nullable))
    return tuple(fields)


def infer_key(messages: Sequence[KafkaMessage[Any, Any]]) -> tuple[str, ...]:
    """The value fields that hold each message's key: the fields of a JSON-object key
    (when every value repeats them), or the one value field equal to a scalar key.
    Empty when messages have no keys or no field always matches."""
    keyed = [(m.key, _as_object(m.value)) for m in messages if m.key is not None]
    if not keyed or any(value is None for _, value in keyed):
        return ()
    first_key = _as_object(keyed[0][0])
    if first_key is not None:
        names = tuple(first_key)
        for key, value in keyed:
            obj = _as_object(key)
            assert value is not None
            if obj is None or tuple(obj) != names or any(value.get(n) != obj[n] for n in names):
                return ()
        return names
    first_value = keyed[0][1]
    assert first_value is not None
    for name in first_value:
        if all(value is not None and _matches(value.get(name), key) for key, value in keyed):
            return (name,)
    return ()


def _matches(field_value: Any, key: Any) -> bool:
    if field_value is None or isinstance(field_value, bool):
        return False
    if field_value == key:
        return True
    return (
        isinstance(key, str)
        and not isinstance(field_value, Mapping | list)
        and str(field_value) == key
    )


def objects(messages: Sequence[KafkaMessage[Any, Any]]) -> list[Mapping[str, Any]]:
    """The values of ``messages`` that are JSON objects (or pydantic models)."""
    found = []
    for message in messages:
        obj = _as_object(message.value)
        if obj is not None:
            found.append(obj)
    return found
