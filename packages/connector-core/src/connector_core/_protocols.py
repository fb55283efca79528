"""The contract every connector fulfils, and the capabilities some add."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol, runtime_checkable

from connector_core._models import Catalog, CheckResult, Record, WriteResult


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
    """Read records of a stream, incrementally from a cursor value."""

    def read(
        self, stream: str, *, since: Any = None, limit: int | None = None
    ) -> AsyncIterator[Record]: ...

    async def sample(self, stream: str, n: int = 10) -> list[Record]: ...


@runtime_checkable
class Writable(Protocol):
    """Write records into a stream, reporting per-record failures."""

    async def write(self, stream: str, records: Iterable[Record]) -> WriteResult: ...
