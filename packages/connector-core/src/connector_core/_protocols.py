"""The contract every connector fulfils, and the capabilities some add."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from connector_core._models import Catalog, CheckResult, Record, SchemaChange, Stream, WriteResult


@runtime_checkable
class Connector(Protocol):
    """A connection to one external system.

    ``ping()`` returns the round trip in seconds and raises a ConnectorError when
    the system is unhealthy; ``connect()`` and ``disconnect()`` are idempotent.
    """

    name: str
    version: str

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def ping(self) -> float: ...

    @property
    def is_connected(self) -> bool: ...


@runtime_checkable
class Checkable(Protocol):
    """Validate the config, connect, ping, and report: every connector has it."""

    async def check(self) -> CheckResult: ...


@runtime_checkable
class Discoverable(Protocol):
    """List the streams a source holds, with their fields and keys."""

    async def discover(self) -> Catalog: ...


@runtime_checkable
class Readable(Protocol):
    """Read records of a stream, in order, incrementally from a position.

    ``read(stream, since=..., limit=...)`` yields the stream's records ordered by
    (cursor, key): the stream's cursor field, then its primary key as the tie-breaker
    (by key alone when it has no cursor). ``since`` means, in every connector:

    * ``None``: from the start;
    * a :class:`~connector_core.Checkpoint`: strictly after that position (the record it
      was taken after, and every record before it in this order, are not read again):
      exactly once across runs, even when many records share one cursor value;
    * a plain value (a timestamp, a number): the records whose cursor is greater than
      **or equal to** it. At least once: records at that value are read again rather
      than risk missing one written later with the same value.

    ``limit`` stops after that many records (0: none). An unknown stream raises
    NotFoundError (by the first step of the iteration at the latest). ``sample(stream,
    n)`` returns up to ``n`` records, in no particular order. See decision 0059.
    """

    def read(
        self, stream: str, *, since: Any = None, limit: int | None = None
    ) -> AsyncIterator[Record]: ...

    async def sample(self, stream: str, n: int = 10) -> list[Record]: ...


@runtime_checkable
class Writable(Protocol):
    """Write records into a stream, reporting per-record failures.

    ``written + failed`` is the number of records given; each :class:`RecordError` has
    the ``index`` of its record in the input (-1 when the destination did not say
    which). Writing the same records again (an upsert on the primary key) leaves one
    record per key. Nothing is applied silently in part: a record either is written or
    is reported failed, and a result with failures dropped unread logs a warning.
    """

    async def write(self, stream: str, records: Iterable[Record]) -> WriteResult: ...


@runtime_checkable
class Provisionable(Protocol):
    """Create a stream (table, collection, topic) shaped like a :class:`Stream`, or make an
    existing one fit it.

    ``ensure_stream(name, schema)`` creates ``name`` with ``schema``'s fields and primary
    key when it does not exist, adds the fields it lacks (a column a source added later)
    and leaves the others alone; it raises :class:`~connector_core.SchemaChangeError` when
    an existing field's type cannot hold the schema's (nothing is changed then). It is
    idempotent: a second call with the same schema changes nothing.
    """

    async def ensure_stream(self, name: str, schema: Stream) -> SchemaChange: ...


@runtime_checkable
class Deletable(Protocol):
    """Delete records of a stream by key.

    ``delete_keys(stream, keys)`` takes mappings holding the primary key's fields (a whole
    record will do) and deletes the record of each key; a key that matches nothing is
    not an error (deleting twice is deleting once). The result counts every key given
    as written or failed, like :class:`Writable`'s.
    """

    async def delete_keys(
        self, stream: str, keys: Iterable[Mapping[str, object]]
    ) -> WriteResult: ...
