"""LISTEN/NOTIFY as an async iterator that survives losing its connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, MutableSet
from types import TracebackType
from typing import Any

import asyncpg

from connector_core import InvalidRequestError, RetryPolicy
from connector_postgres._errors import DriverTimeoutError
from connector_postgres._identifiers import MAX_IDENTIFIER_BYTES, quote_ident
from connector_postgres._results import Notification
from connector_postgres._session import Road

logger = logging.getLogger("connector.postgres.listen")

_LOST = object()  # queued when the connection drops, to wake the consumer
# The reopen backoff: the first retry soon (a dropped connection is often back at once),
# then at most every 2 s; the deadline, reconnect_timeout, is what ends it.
_REOPEN_INITIAL_DELAY = 0.1
_REOPEN_MAX_DELAY = 2.0
_REOPEN_MAX_ATTEMPTS = 1_000_000


class Listener(AsyncIterator[Notification]):
    """Notifications on one or more channels, from ``PostgresConnector.listen()``.

    Use it as ``async with connector.listen("jobs") as listener: async for n in listener``
    (LISTEN is in effect once the ``async with`` is entered) or iterate it directly (LISTEN
    starts at the first ``__anext__``). It holds its own connection, outside the pool.

    When that connection is lost it reconnects and LISTENs again on the connector's road
    (as the ``listen`` operation: RETRY events, retries in stats, backoff with jitter from
    0.1 s to 2 s) for up to ``reconnect_timeout`` seconds, then raises the last
    ConnectionFailedError (CircuitOpenError if the connector's circuit breaker opens
    meanwhile). Notifications sent while it was disconnected are lost: that is how
    LISTEN/NOTIFY works. When no notification arrives for ``keepalive`` seconds it checks
    the connection with a round trip.

    Built by ``PostgresConnector.listen()``, which passes what it needs: how to open a
    dedicated connection, the road, the set of open listeners that ``disconnect()``
    closes, and the bound of a keepalive round trip (``ping_timeout``, at most
    ``keepalive``).
    """

    def __init__(
        self,
        channels: tuple[str, ...],
        *,
        open_connection: Callable[[], Awaitable[asyncpg.Connection]],
        road: Road,
        registry: MutableSet[Listener],
        ping_timeout: float,
        keepalive: float = 30.0,
        reconnect_timeout: float = 60.0,
        max_queued: int = 10_000,
    ) -> None:
        # A keepalive of inf (or NaN) would never check the connection, and an infinite
        # reconnect_timeout would retry for ever: every wait of the listener is bounded.
        if not (math.isfinite(keepalive) and keepalive > 0):
            raise InvalidRequestError(
                "keepalive must be a finite number of seconds > 0", connector="postgres"
            )
        if not (math.isfinite(reconnect_timeout) and reconnect_timeout >= 0):
            raise InvalidRequestError(
                "reconnect_timeout must be a finite number of seconds >= 0", connector="postgres"
            )
        for channel in channels:
            quote_ident(channel)
            if len(channel.encode()) > MAX_IDENTIFIER_BYTES:
                raise InvalidRequestError(
                    f"channel name longer than {MAX_IDENTIFIER_BYTES} bytes: {channel!r}",
                    connector="postgres",
                )
        self._open_connection = open_connection
        self._road = road
        self._registry = registry
        self._ping_timeout = min(keepalive, ping_timeout)
        self._reopen_policy = RetryPolicy(
            max_attempts=_REOPEN_MAX_ATTEMPTS,
            initial_delay=_REOPEN_INITIAL_DELAY,
            max_delay=_REOPEN_MAX_DELAY,
            deadline=reconnect_timeout,
            # An outage long enough to open the circuit is what reconnecting is for:
            # wait for the circuit's probe instead of giving up at once.
            wait_for_open_circuit=True,
        )
        self.channels = channels
        self.keepalive = keepalive
        self.reconnect_timeout = reconnect_timeout
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max_queued)
        self._connection: asyncpg.Connection | None = None
        self._started = False
        self._closed = False
        self.reconnects = 0
        """How many times the listener has reconnected."""
        self.dropped = 0
        """Notifications dropped because ``max_queued`` were waiting unread."""

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and LISTEN (idempotent). Raises ConnectionFailedError and friends."""
        if self._started:
            return
        self._started = True
        self._registry.add(self)
        await self._open()

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the listening connection (None when it has none at
        the moment); it changes when the listener reconnects."""
        connection = self._connection
        if connection is None or connection.is_closed():
            return None
        pid: int = connection.get_server_pid()
        return pid

    async def close(self) -> None:
        """UNLISTEN and close the connection (idempotent). ``connector.disconnect()``
        closes every listener still open."""
        self._closed = True
        self._registry.discard(self)
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)
            if not connection.is_closed():
                connection.terminate()
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_LOST)

    async def __aenter__(self) -> Listener:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.close())

    # -- iteration ----------------------------------------------------------------------

    def __aiter__(self) -> Listener:
        return self

    async def __anext__(self) -> Notification:
        await self.start()
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._connection is None or self._connection.is_closed():
                await self._reopen()
                continue
            try:
                item = await asyncio.wait_for(self._queue.get(), self.keepalive)
            except TimeoutError:
                await self._check_alive()
                continue
            if item is _LOST:
                continue
            notification: Notification = item
            return notification

    # -- connection ---------------------------------------------------------------------

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: object) -> None:
        try:
            self._queue.put_nowait(Notification(channel=channel, payload=str(payload), pid=pid))
        except asyncio.QueueFull:
            self.dropped += 1
            logger.warning("listener queue full: dropped a notification on %r", channel)

    def _on_terminate(self, connection: Any) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_LOST)

    async def _open(self, policy: RetryPolicy | None = None) -> None:
        """Connect and LISTEN on the road (``policy``: None for the connector's own)."""
        open_connection = self._open_connection

        async def connect_and_listen() -> asyncpg.Connection:
            connection = await open_connection()
            try:
                for channel in self.channels:
                    await connection.add_listener(channel, self._on_notify)
                connection.add_termination_listener(self._on_terminate)
            except TimeoutError as exc:
                # command_timeout ran out on LISTEN: the new connection is not answering,
                # which the reconnect loop retries like a connect that timed out.
                connection.terminate()
                raise DriverTimeoutError(
                    "LISTEN on a new connection timed out (command_timeout)", connecting=True
                ) from exc
            except BaseException:
                connection.terminate()
                raise
            return connection

        self._connection = await self._road(
            "listen", connect_and_listen, idempotent=True, retry_policy=policy
        )

    async def _reopen(self) -> None:
        # One retry loop in the tree: the road's, with a policy whose deadline is
        # reconnect_timeout (docs/decisions/0062).
        await self._open(self._reopen_policy)
        self.reconnects += 1
        logger.info("listener reconnected to channels %s", ", ".join(self.channels))

    async def _check_alive(self) -> None:
        connection = self._connection
        if connection is None or connection.is_closed():
            return
        try:
            await asyncio.wait_for(connection.fetchval("SELECT 1"), self._ping_timeout)
        except (Exception, TimeoutError):
            logger.info("listener connection failed its keepalive check; reconnecting")
            connection.terminate()
