"""AdvisoryLeases: stream leases as session-level PostgreSQL advisory locks, the
connector_core.sync StreamLeases that workers on several machines share."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import asyncpg

from connector_core import ConnectionFailedError, InvalidRequestError
from connector_postgres._keepalive import keepalive_options
from connector_postgres._session import Road

# idle_session_timeout is PostgreSQL 14's; older servers keep the TCP settings only.
_IDLE_SESSION_TIMEOUT_SINCE = 140000


def lease_key(group: str, name: str) -> int:
    """The advisory-lock key of lease ``name`` in ``group``: the first 8 bytes of the
    BLAKE2b hash of both, as a signed 64-bit integer. The same on every machine and
    Python (unlike ``hash()``) and on every server (unlike ``hashtext``); in
    ``pg_locks`` it shows as ``classid`` (high 32 bits) and ``objid`` (low 32 bits)."""
    digest = hashlib.blake2b(f"{group}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryLeases:
    """Leases by name held as session-level advisory locks on one dedicated connection
    (``pg_try_advisory_lock``), from ``PostgresConnector.leases(group)``.

    The locks live as long as that session: PostgreSQL releases them when the worker's
    process dies (its socket closes: at once), when its machine or network goes away
    (``tcp_keepalives_*`` and ``tcp_user_timeout`` of the session: about ``timeout``
    seconds), and when the session stays idle for ``timeout`` seconds
    (``idle_session_timeout``, PostgreSQL 14 and later: a worker that froze). A worker
    calls :meth:`check` every :attr:`heartbeat` (``timeout / 3``) seconds, each call
    bounded by ``timeout / 3``, so it learns that its session is gone before the server
    can hand its leases to another session. The connection is never reopened behind the
    worker's back: a lost session is an error (ConnectionFailedError) and the leases are
    gone.

    ``group`` names the configuration the leases belong to (its keys are
    :func:`lease_key` of it and each name). Use it as ``async with connector.leases(...)``
    (or :meth:`open` and :meth:`close`). Not through a transaction-pooling PgBouncer:
    session locks need a session. Raises InvalidRequestError for a bad ``group`` or
    ``timeout``; the connector's errors (ConnectionFailedError, ConnectorTimeoutError)
    from its calls.
    """

    def __init__(
        self,
        group: str,
        *,
        open_connection: Callable[[], Awaitable[asyncpg.Connection]],
        road: Road,
        timeout: float = 30.0,
    ) -> None:
        if not isinstance(group, str) or not group:
            raise InvalidRequestError("leases need a group name", connector="postgres")
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout >= 3):
            raise InvalidRequestError(
                "lease timeout must be a finite number of seconds >= 3", connector="postgres"
            )
        self.group = group
        self.timeout = float(timeout)
        self.heartbeat = self.timeout / 3
        """Seconds between :meth:`check` calls (and the bound of each lease call)."""
        self._open_connection = open_connection
        self._road = road
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._held: dict[str, int] = {}
        self._lost = False

    def __repr__(self) -> str:
        return f"AdvisoryLeases(group={self.group!r}, held={sorted(self._held)})"

    @property
    def held(self) -> frozenset[str]:
        """The names leased by this session."""
        return frozenset(self._held)

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the lease session (``pg_locks.pid``), None when closed."""
        connection = self._connection
        if connection is None or connection.is_closed():
            return None
        pid: int = connection.get_server_pid()
        return pid

    def key(self, name: str) -> int:
        """The advisory-lock key of ``name`` (:func:`lease_key` with this group)."""
        return lease_key(self.group, name)

    async def open(self) -> None:
        """Open the lease session and set its timeouts (idempotent)."""
        if self._connection is not None:
            return

        async def connect() -> asyncpg.Connection:
            connection = await self._open_connection()
            try:
                await connection.execute(self._settings_sql(connection))
            except BaseException:
                connection.terminate()
                raise
            return connection

        self._connection = await self._road("lease", connect, idempotent=True, timeout=self.timeout)
        self._lost = False

    def _settings_sql(self, connection: asyncpg.Connection) -> str:
        tcp = keepalive_options(self.timeout)
        settings = {
            "tcp_keepalives_idle": tcp["TCP_KEEPIDLE"],
            "tcp_keepalives_interval": tcp["TCP_KEEPINTVL"],
            "tcp_keepalives_count": tcp["TCP_KEEPCNT"],
            "tcp_user_timeout": tcp["TCP_USER_TIMEOUT"],
        }
        version = connection.get_server_version()
        if version.major * 10000 >= _IDLE_SESSION_TIMEOUT_SINCE:
            settings["idle_session_timeout"] = round(self.timeout * 1000)
        return "; ".join(f"SET {name} = {int(value)}" for name, value in settings.items())

    async def close(self) -> None:
        """Close the session: every lease it held is released (idempotent)."""
        connection, self._connection = self._connection, None
        self._held.clear()
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self.heartbeat)
            if not connection.is_closed():
                connection.terminate()

    async def __aenter__(self) -> AdvisoryLeases:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.close())

    async def _call(self, operation: str, sql: str, *args: Any) -> Any:
        connection = self._connection
        if connection is None or self._lost:
            raise ConnectionFailedError(
                f"the lease session of group {self.group!r} is "
                + ("lost: its leases are gone; open new leases" if self._lost else "not open"),
                connector="postgres",
            )

        async def call() -> Any:
            async with self._lock:
                return await connection.fetchval(sql, *args)

        try:
            return await self._road(operation, call, retry=False, timeout=self.heartbeat)
        except Exception:
            # Whatever failed, the session can no longer be trusted to hold the locks.
            self._lost = True
            self._held.clear()
            connection.terminate()
            raise

    async def try_acquire(self, name: str) -> bool:
        """Take the lease on ``name`` unless another session holds it; whether it is held."""
        if name in self._held:
            return True
        key = self.key(name)
        if await self._call("lease", "SELECT pg_try_advisory_lock($1)", key):
            self._held[name] = key
            return True
        return False

    async def release(self, name: str) -> None:
        """Give the lease on ``name`` back (nothing happens when it is not held)."""
        key = self._held.pop(name, None)
        if key is not None:
            await self._call("lease", "SELECT pg_advisory_unlock($1)", key)

    async def check(self) -> None:
        """One round trip on the lease session; raises ConnectionFailedError (or the
        timeout's error) when it is gone, and from then on."""
        await self._call("lease_check", "SELECT 1")
