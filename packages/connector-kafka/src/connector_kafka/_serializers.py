"""Serializers: how keys and values become bytes on the wire, and back."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from connector_core import SerializationError
from connector_kafka._config import Format

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@runtime_checkable
class Serializer(Protocol[T]):
    """Turns a key or a value into bytes and back. A ``None`` key or value (a
    tombstone) is never given to a serializer: it travels as Kafka's null.

    ``serialize`` and ``deserialize`` raise SerializationError (or any exception, which
    the connector reports as one) for what they cannot handle."""

    def serialize(self, value: T) -> bytes: ...

    def deserialize(self, data: bytes) -> T: ...


class BytesSerializer:
    """Bytes as they are (``bytes``, ``bytearray``, ``memoryview`` in; ``bytes`` out)."""

    def serialize(self, value: object) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, bytearray | memoryview):
            return bytes(value)
        raise SerializationError(
            f"the bytes serializer takes bytes, not {type(value).__name__}: pass bytes, "
            "or configure another serializer (key_format/value_format, or key_serializer=/"
            "value_serializer=)"
        )

    def deserialize(self, data: bytes) -> bytes:
        return data

    def __repr__(self) -> str:
        return "BytesSerializer()"


class StringSerializer:
    """Text in ``encoding`` (UTF-8 by default)."""

    def __init__(self, encoding: str = "utf-8") -> None:
        self.encoding = encoding

    def serialize(self, value: str) -> bytes:
        if not isinstance(value, str):
            raise SerializationError(f"the string serializer takes str, not {type(value).__name__}")
        try:
            return value.encode(self.encoding)
        except UnicodeEncodeError as exc:
            problem = f"cannot encode text as {self.encoding} (at position {exc.start})"
        raise SerializationError(problem)

    def deserialize(self, data: bytes) -> str:
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError as exc:
            problem = f"not {self.encoding} text (byte {exc.start})"
        raise SerializationError(problem)

    def __repr__(self) -> str:
        return f"StringSerializer({self.encoding!r})"


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class JsonSerializer:
    """JSON (compact, UTF-8). Besides JSON's own types it writes pydantic models (their
    JSON dump), datetimes, dates and times (ISO 8601), UUIDs and Decimals (as strings),
    tuples and sets (as lists); ``default`` replaces that hook. NaN and infinity are
    refused (they are not JSON)."""

    def __init__(self, *, default: Callable[[Any], Any] | None = None) -> None:
        self._default = default or _json_default

    def serialize(self, value: Any) -> bytes:
        try:
            text = json.dumps(
                value,
                default=self._default,
                allow_nan=False,
                ensure_ascii=False,
                separators=(",", ":"),
            )
            return text.encode("utf-8", "surrogatepass")
        except (TypeError, ValueError, RecursionError) as exc:
            problem = f"cannot encode as JSON: {_reason(exc)}"
        raise SerializationError(problem)

    def deserialize(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except RecursionError:
            problem = "JSON nested too deeply to decode"
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            problem = f"not valid JSON ({type(exc).__name__})"
        raise SerializationError(problem)

    def __repr__(self) -> str:
        return "JsonSerializer()"


class PydanticSerializer(Generic[M]):
    """Instances of one pydantic model, as its JSON (a mapping given to ``serialize`` is
    validated into the model first). Decoding validates; errors name the fields, never
    the values."""

    def __init__(self, model: type[M]) -> None:
        self.model = model

    def serialize(self, value: M | dict[str, Any]) -> bytes:
        if isinstance(value, self.model):
            return value.model_dump_json().encode()
        if isinstance(value, dict):
            return self.deserialize_object(value).model_dump_json().encode()
        raise SerializationError(
            f"expected a {self.model.__name__} (or a dict of its fields), "
            f"not {type(value).__name__}"
        )

    def deserialize(self, data: bytes) -> M:
        try:
            return self.model.model_validate_json(data)
        except ValidationError as exc:
            problem = _validation_problem(self.model, exc)
        raise SerializationError(problem)

    def deserialize_object(self, value: dict[str, Any]) -> M:
        try:
            return self.model.model_validate(value)
        except ValidationError as exc:
            problem = _validation_problem(self.model, exc)
        raise SerializationError(problem)

    def __repr__(self) -> str:
        return f"PydanticSerializer({self.model.__name__})"


def _validation_problem(model: type[BaseModel], exc: ValidationError) -> str:
    listing = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '__root__'}: {e['type']}"
        for e in exc.errors(include_url=False, include_input=False)[:5]
    )
    return f"not a valid {model.__name__} ({exc.error_count()} errors: {listing})"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def serializer_for(format: Format) -> Serializer[Any]:
    """The built-in serializer a config's ``key_format``/``value_format`` names."""
    if format is Format.STRING:
        return StringSerializer()
    if format is Format.JSON:
        return JsonSerializer()
    return BytesSerializer()


def is_json(serializer: Serializer[Any]) -> bool:
    """Whether values of ``serializer`` are JSON (so records and fields can be read)."""
    return isinstance(serializer, JsonSerializer | PydanticSerializer)
