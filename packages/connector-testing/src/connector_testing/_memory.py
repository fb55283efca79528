"""MemoryConnector: an in-memory connector with every capability, for tests and demos."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

from pydantic import Field, SecretStr

from connector_core import (
    AuthenticationError,
    BaseConnector,
    Catalog,
    Checkpoint,
    ConnectionFailedError,
    ConnectorConfig,
    ConnectorError,
    ErrorCode,
    FieldType,
    InvalidRequestError,
    NotFoundError,
    Record,
    RecordError,
    Stream,
    StreamField,
    WriteResult,
)

try:
    _VERSION = version("connector-testing")
except PackageNotFoundError:  # pragma: no cover
    _VERSION = "0.0.0"


class MemoryConfig(ConnectorConfig):
    """Configuration of :class:`MemoryConnector` (URL: ``memory://<store>?latency=0.01``)."""

    url_schemes: ClassVar[tuple[str, ...]] = ("memory",)

    store: str = Field("default", min_length=1, description="Name of the shared store.")
    token: SecretStr | None = Field(None, description="A credential; checked if expected_token.")
    expected_token: SecretStr | None = Field(
        None, description="When set, connect() fails with AuthenticationError unless token matches."
    )
    latency: float = Field(0.0, ge=0, description="Simulated round-trip seconds per operation.")
    available: bool = Field(True, description="False simulates an unreachable system.")

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        parts = urlsplit(url)
        fields: dict[str, Any] = {}
        if parts.hostname:
            fields["store"] = parts.hostname
        if parts.password:
            fields["token"] = parts.password
        fields.update(parse_qsl(parts.query))
        return fields

    def connection_string(self, reveal: bool = False) -> str:
        return f"memory://{self.store}"


class _StreamData:
    def __init__(self, primary_key: tuple[str, ...], cursor_field: str | None) -> None:
        self.primary_key = primary_key
        self.cursor_field = cursor_field
        self.rows: dict[Any, dict[str, Any]] = {}
        self.next_id = 0


_STORES: dict[str, dict[str, _StreamData]] = {}


def _portable_type(value: Any) -> FieldType:
    # bool before int: bool is an int subclass.
    for py_type, field_type in (
        (bool, FieldType.BOOLEAN),
        (int, FieldType.INTEGER),
        (float, FieldType.NUMBER),
        (Decimal, FieldType.DECIMAL),
        (str, FieldType.STRING),
        (bytes, FieldType.BINARY),
        (datetime, FieldType.DATETIME),
        (date, FieldType.DATE),
        (UUID, FieldType.UUID),
        (list, FieldType.ARRAY),
        (tuple, FieldType.ARRAY),
        (dict, FieldType.OBJECT),
    ):
        if isinstance(value, py_type):
            return field_type
    return FieldType.UNKNOWN


def _key_of(key: Any) -> tuple[Any, ...]:
    return key if isinstance(key, tuple) else (key,)


def _key_tuple(row: Mapping[str, Any], fields: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(row.get(f) for f in fields)


_REVIVERS: tuple[tuple[type[Any], Any], ...] = (
    (datetime, datetime.fromisoformat),
    (date, date.fromisoformat),
    (Decimal, Decimal),
    (UUID, UUID),
)


def _like(value: Any, field: str, rows: list[dict[str, Any]]) -> Any:
    """``value`` as the type the stream stores in ``field``: a checkpoint that went
    through JSON carries timestamps, decimals and UUIDs as strings."""
    if not isinstance(value, str):
        return value
    sample = next((row[field] for row in rows if row.get(field) is not None), None)
    for kind, revive in _REVIVERS:
        if isinstance(sample, kind):
            try:
                return revive(value)
            except ValueError:
                return value
    return value


class MemoryConnector(BaseConnector[MemoryConfig]):
    """An in-memory connector that implements every capability.

    Instances with the same ``store`` name share data, like clients of one database.
    ``write()`` upserts on the stream's primary key (appends when it has none);
    ``read()`` follows :class:`connector_core.Readable`: records in (cursor, key) order,
    ``since`` a Checkpoint (strictly after) or a plain value (cursor >= it); records
    whose cursor is None are not read when the stream has a cursor. ``fail_next()``
    injects errors for retry tests.
    """

    name: ClassVar[str] = "memory"
    version: ClassVar[str] = _VERSION
    config_class: ClassVar[type[ConnectorConfig]] = MemoryConfig

    def __init__(self, config: MemoryConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config or MemoryConfig(), **kwargs)
        self._failures: list[ConnectorError | BaseException] = []
        self.calls = 0

    # -- test controls ------------------------------------------------------------------

    def fail_next(self, *errors: ConnectorError | BaseException) -> None:
        """Make the next operations raise these errors, one per call, in order."""
        self._failures.extend(errors)

    @classmethod
    def reset_store(cls, store: str | None = None) -> None:
        """Forget the data of one store (or of all)."""
        if store is None:
            _STORES.clear()
        else:
            _STORES.pop(store, None)

    def create_stream(
        self, stream: str, *, primary_key: Iterable[str] = ("id",), cursor_field: str | None = None
    ) -> None:
        """Declare a stream with its key and cursor (idempotent)."""
        streams = _STORES.setdefault(self.config.store, {})
        if stream not in streams:
            streams[stream] = _StreamData(tuple(primary_key), cursor_field)

    # -- lifecycle ----------------------------------------------------------------------

    async def _connect(self) -> None:
        await self._simulate()
        if not self.config.available:
            raise ConnectionFailedError(
                f"memory store {self.config.store!r} is unavailable", connector=self.name
            )
        expected = self.config.expected_token
        if expected is not None:
            given = self.config.token
            if given is None or given.get_secret_value() != expected.get_secret_value():
                raise AuthenticationError(
                    "token rejected by the memory store; check the 'token' setting",
                    connector=self.name,
                )
        _STORES.setdefault(self.config.store, {})

    async def _disconnect(self) -> None:
        return None

    async def _ping(self) -> None:
        await self._simulate()

    async def _simulate(self) -> None:
        self.calls += 1
        if self._failures:
            raise self._failures.pop(0)
        if self.config.latency:
            await asyncio.sleep(self.config.latency)

    @property
    def _streams(self) -> dict[str, _StreamData]:
        return _STORES.setdefault(self.config.store, {})

    def _stream(self, stream: str) -> _StreamData:
        try:
            return self._streams[stream]
        except KeyError:
            known = ", ".join(sorted(self._streams)) or "none"
            raise NotFoundError(
                f"stream {stream!r} not found in memory store {self.config.store!r}; "
                f"known streams: {known}",
                connector=self.name,
            ) from None

    # -- capabilities -------------------------------------------------------------------

    async def discover(self) -> Catalog:
        """Streams with fields inferred from the stored records."""

        async def op() -> Catalog:
            await self._simulate()
            streams = []
            for name, data in sorted(self._streams.items()):
                types: dict[str, FieldType] = {}
                nullable: dict[str, bool] = {}
                for row in data.rows.values():
                    for key, value in row.items():
                        if value is None:
                            nullable[key] = True
                            types.setdefault(key, FieldType.UNKNOWN)
                        elif types.get(key, FieldType.UNKNOWN) is FieldType.UNKNOWN:
                            types[key] = _portable_type(value)
                for key in types:
                    if any(key not in row for row in data.rows.values()):
                        nullable[key] = True
                fields = tuple(
                    StreamField(
                        name=k,
                        type=t,
                        nullable=nullable.get(k, False) and k not in data.primary_key,
                    )
                    for k, t in types.items()
                )
                streams.append(
                    Stream(
                        name=name,
                        namespace=self.config.store,
                        fields=fields,
                        primary_key=data.primary_key,
                        cursor_field=data.cursor_field,
                        estimated_count=len(data.rows),
                    )
                )
            return Catalog(streams=tuple(streams))

        return await self.run("discover", op, idempotent=True)

    async def write(self, stream: str, records: Iterable[Record]) -> WriteResult:
        """Upsert ``records`` on the stream's primary key; creates the stream if needed.

        Records that are not mappings or lack a key field fail individually; the
        others are written. Retried on transient errors when the stream has a primary key
        (an upsert); appending to a stream without one is not retried.
        """
        batch: list[Any] = list(records)
        existing = self._streams.get(stream)
        upsert = existing is None or bool(existing.primary_key)

        async def op() -> WriteResult:
            await self._simulate()
            self.create_stream(stream)
            data = self._streams[stream]
            written = 0
            errors: list[RecordError] = []
            for index, record in enumerate(batch):
                if not isinstance(record, Mapping):
                    errors.append(
                        RecordError(
                            index=index,
                            code=ErrorCode.SERIALIZATION,
                            message=f"record is a {type(record).__name__}, not a mapping",
                        )
                    )
                    continue
                missing = [k for k in data.primary_key if record.get(k) is None]
                if missing:
                    errors.append(
                        RecordError(
                            index=index,
                            code=ErrorCode.INVALID_REQUEST,
                            message=f"missing key field(s): {', '.join(missing)}",
                        )
                    )
                    continue
                if data.primary_key:
                    key: Any = tuple(record[k] for k in data.primary_key)
                else:
                    key = data.next_id
                    data.next_id += 1
                data.rows[key] = copy.deepcopy(dict(record))
                written += 1
            return WriteResult(written=written, failed=len(errors), errors=tuple(errors))

        # Upserts are idempotent, so a transient failure may be retried safely.
        return await self.run("write", op, idempotent=upsert)

    async def _select(self, stream: str, since: Any, limit: int | None) -> list[Record]:
        await self._simulate()
        if limit is not None and limit < 0:
            raise InvalidRequestError("limit must be >= 0", connector=self.name)
        data = self._stream(stream)
        cursor = data.cursor_field
        rows = [(_key_of(key), row) for key, row in data.rows.items()]
        if cursor is not None:
            rows = [r for r in rows if r[1].get(cursor) is not None]
            rows.sort(key=lambda r: (r[1][cursor], r[0]))
        else:
            rows.sort(key=lambda r: r[0])
        if since is not None:
            try:
                rows = self._after(stream, data, rows, since)
            except TypeError:
                raise InvalidRequestError(
                    f"since={type(since).__name__} cannot be compared with the cursor or key "
                    f"values of stream {stream!r}",
                    connector=self.name,
                ) from None
        selected = rows if limit is None else rows[:limit]
        return [copy.deepcopy(row) for _, row in selected]

    def _after(
        self,
        stream: str,
        data: _StreamData,
        rows: list[tuple[tuple[Any, ...], dict[str, Any]]],
        since: Any,
    ) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        cursor = data.cursor_field
        key_fields = tuple(k for k in data.primary_key if k != cursor)
        if isinstance(since, Checkpoint):
            if cursor is None and since.cursor is not None:
                raise InvalidRequestError(
                    f"stream {stream!r} has no cursor field; its checkpoints hold only a key",
                    connector=self.name,
                )
            if len(since.key) not in (0, len(key_fields)):
                raise InvalidRequestError(
                    f"checkpoint key has {len(since.key)} values; the key of {stream!r} "
                    f"is {key_fields}",
                    connector=self.name,
                )
            rows_by_field = [row for _, row in rows]
            key = tuple(
                _like(v, f, rows_by_field) for v, f in zip(since.key, key_fields, strict=False)
            )
            if cursor is None:
                return [r for r in rows if _key_tuple(r[1], key_fields) > key]
            at = _like(since.cursor, cursor, rows_by_field)
            if not key:
                return [r for r in rows if r[1][cursor] > at]
            return [r for r in rows if (r[1][cursor], _key_tuple(r[1], key_fields)) > (at, key)]
        if cursor is None:
            raise InvalidRequestError(
                f"stream {stream!r} has no cursor field, so a plain 'since' value cannot be "
                "used; pass a Checkpoint of the key",
                connector=self.name,
            )
        value = _like(since, cursor, [row for _, row in rows])
        return [r for r in rows if r[1][cursor] >= value]

    def read(
        self, stream: str, *, since: Any = None, limit: int | None = None
    ) -> AsyncIterator[Record]:
        """Records of ``stream`` in (cursor, key) order; ``since`` as
        :class:`connector_core.Readable` says. Raises NotFoundError for an unknown stream,
        InvalidRequestError for a ``since`` the stream cannot take."""
        return self._read(stream, since, limit)

    async def _read(self, stream: str, since: Any, limit: int | None) -> AsyncIterator[Record]:
        rows = await self.run("read", lambda: self._select(stream, since, limit), idempotent=True)
        for row in rows:
            yield row

    async def sample(self, stream: str, n: int = 10) -> list[Record]:
        """The first ``n`` records of ``stream``."""
        return await self.run("sample", lambda: self._select(stream, None, n), idempotent=True)

    async def delete(self, stream: str, key: Any) -> bool:
        """Delete one record by key; returns whether it existed."""

        async def op() -> bool:
            await self._simulate()
            data = self._stream(stream)
            k = key if isinstance(key, tuple) else (key,)
            return data.rows.pop(k, None) is not None

        return await self.run("delete", op, idempotent=True)
