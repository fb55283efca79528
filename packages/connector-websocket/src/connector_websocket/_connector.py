"""WebSocketConnector: a pool of websockets connections behind connector_core's road."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from connector_core import (
    USE_DEFAULT,
    BaseConnector,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    DriverLogScrubber,
    NotConnectedError,
    SerializationError,
    UseDefault,
    scrub_secrets,
)
from connector_websocket import _envelope
from connector_websocket._config import WebSocketConfig
from connector_websocket._errors import NAME, remote_error, translate_error

try:
    __version__ = _version("connector-websocket")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

_DRIVER_LOGS = DriverLogScrubber("websockets")
# websockets makes its client logger on the first connect: made here, it is there when
# the first connector installs the scrubbing filter (a filter does not reach children).
_CLIENT_LOGGER = logging.getLogger("websockets.client")
INBOX_SIZE = 1024
"""Incoming messages that are not replies wait here for ``receive()``/``messages()``."""


class Opener(Protocol):
    """What opens one connection: ``websockets.asyncio.client.connect`` by default.
    Called as ``await opener(url, **options)`` with the options of
    :meth:`WebSocketConfig.connect_options`; give your own to wrap or replace it."""

    def __call__(self, uri: str, /, **options: Any) -> Awaitable[ClientConnection]: ...


# The connection a request came in on: replies sent while handling it go back on it.
_REPLY_LINK: contextvars.ContextVar[Link | None] = contextvars.ContextVar(
    "connector_websocket_reply_link", default=None
)


class Link:
    """One open connection of the pool: its reader hands replies to the requests that
    wait for them and every other message to the connector's inbox."""

    __slots__ = ("index", "lost", "pending", "reader", "ws")

    def __init__(self, ws: ClientConnection, index: int) -> None:
        self.ws = ws
        self.index = index
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.lost: ConnectorError | None = None

    @property
    def is_open(self) -> bool:
        return self.lost is None and self.reader is not None and not self.reader.done()


class WebSocketConnector(BaseConnector[WebSocketConfig]):
    """A client of a WebSocket server: ``pool_size`` connections (default 1), JSON
    envelopes, ``request()`` awaiting the reply with the same ``request_id`` (many in
    flight), and the messages that are not replies through :meth:`receive` or
    :meth:`messages`.

    Every call runs on the core's road (timeout, typed errors, retries of idempotent
    calls, stats). A lost connection is re-made before the next call. The server's
    keepalive pings are websockets' own (``heartbeat_interval``, ``pong_timeout``).
    """

    name = NAME
    version = __version__

    def __init__(self, config: WebSocketConfig, *, opener: Opener | None = None, **kwargs: Any):
        """Args:
        config: the connector's config.
        opener: opens one connection (``websockets.asyncio.client.connect`` by default).
        kwargs: the :class:`~connector_core.BaseConnector` options (``retry_policy``,
            ``clock``, ``sleep``, ...).
        """
        super().__init__(config, **kwargs)
        self._opener: Opener = opener if opener is not None else _default_opener
        self._links: list[Link] = []
        self._turn = itertools.count()
        self._ids = itertools.count(1)
        self._inbox: asyncio.Queue[tuple[Link, Any]] = asyncio.Queue(INBOX_SIZE)
        self.wait_when_inbox_full = False
        """True: a full inbox stops reading the socket (back pressure, for an agent);
        False: a message that finds it full is dropped with a warning."""
        self._closing = False
        self._lost = asyncio.Event()
        self._extra_secrets = _derived_secrets(config)
        _DRIVER_LOGS.register(self._known_secrets)

    # -- the driver parts -------------------------------------------------------------

    def _known_secrets(self) -> tuple[str, ...]:
        return (*super()._known_secrets(), *self._extra_secrets)

    def _translate_error(self, exc: BaseException) -> ConnectorError | None:
        return translate_error(exc)

    async def _connect(self) -> None:
        self._closing = False
        self._lost = asyncio.Event()
        options = self.config.connect_options()
        options["logger"] = _CLIENT_LOGGER
        links: list[Link] = []
        try:
            for index in range(self.config.pool_size):
                ws = await self._opener(self.config.url, **options)
                link = Link(ws, index)
                links.append(link)
                auth = self.config.auth_message()
                if auth is not None:
                    await ws.send(auth)
        except BaseException:
            for link in links:
                await _abort(link.ws)
            raise
        for link in links:
            link.reader = asyncio.create_task(
                self._read(link), name=f"websocket-reader-{link.index}"
            )
        self._links = links

    async def _disconnect(self) -> None:
        self._closing = True
        links, self._links = self._links, []
        for link in links:
            await link.ws.close()
        for link in links:
            if link.reader is not None:
                link.reader.cancel()
                await asyncio.gather(link.reader, return_exceptions=True)
            self._fail_pending(link, NotConnectedError("disconnected", connector=self.name))
        self._drop_inbox()

    async def _ping(self) -> None:
        links = self._open_links()
        waiters = [await link.ws.ping() for link in links]
        await asyncio.gather(*waiters)

    # -- the reader -------------------------------------------------------------------

    async def _read(self, link: Link) -> None:
        ws = link.ws
        pending = link.pending
        inbox = self._inbox
        loads = json.loads
        try:
            while True:
                raw = await ws.recv()
                try:
                    message = loads(raw)
                except ValueError:
                    message = raw  # not JSON: the receiver decides
                if type(message) is dict and "status" in message:
                    waiter = pending.pop(message.get("request_id"), None)  # type: ignore[arg-type]
                    if waiter is None:
                        self.logger.info(
                            "dropped a reply nobody waits for (late or unknown): "
                            "request %r, request_id %r",
                            message.get("request"),
                            message.get("request_id"),
                        )
                    elif not waiter.done():
                        waiter.set_result(message)
                    continue
                if inbox.full() and not self.wait_when_inbox_full:
                    self.logger.warning(
                        "inbox full (%d messages nobody reads): dropped one", INBOX_SIZE
                    )
                    continue
                await inbox.put((link, message))
        except ConnectionClosed as exc:
            link.lost = self._outgoing(self._to_error(exc, "receive"), exc)
        except Exception as exc:  # a bug here must not leave requests waiting forever
            link.lost = self._outgoing(self._to_error(exc, "receive"), exc)
            self.logger.exception("the reader of connection %d failed", link.index)
        finally:
            if link.lost is None:
                link.lost = ConnectionFailedError("connection closed", connector=self.name)
            self._fail_pending(link, link.lost)
            if not self._closing:
                self.logger.warning("connection %d lost: %s", link.index, link.lost)
                self._needs_reconnect = True
                self._lost.set()

    def _fail_pending(self, link: Link, error: ConnectorError) -> None:
        pending, link.pending = link.pending, {}
        for waiter in pending.values():
            if not waiter.done():
                waiter.set_exception(error)

    def _drop_inbox(self) -> None:
        while not self._inbox.empty():
            self._inbox.get_nowait()

    @property
    def connection_lost(self) -> asyncio.Event:
        """Set when a connection of the pool is lost (a new event after each connect)."""
        return self._lost

    @property
    def lost_error(self) -> ConnectorError | None:
        """Why a connection of the pool was lost, if one was."""
        return next((link.lost for link in self._links if link.lost is not None), None)

    def connections(self) -> list[ClientConnection]:
        """The open websockets connections of the pool (for what this API lacks)."""
        return [link.ws for link in self._links if link.is_open]

    # -- choosing a connection ----------------------------------------------------------

    def _open_links(self) -> list[Link]:
        links = [link for link in self._links if link.is_open]
        if not links:
            raise ConnectionFailedError("no open connection", connector=self.name)
        return links

    def _pick(self) -> Link:
        links = self._links
        if len(links) == 1:
            link = links[0]
            if link.lost is None:
                return link
        else:
            for _ in range(len(links)):
                link = links[next(self._turn) % len(links)]
                if link.lost is None:
                    return link
        raise self._lost_link_error()

    def _reply_link(self) -> Link:
        link = _REPLY_LINK.get()
        if link is not None and link.lost is None and link in self._links:
            return link
        return self._pick()

    def _lost_link_error(self) -> ConnectorError:
        lost = self.lost_error
        message = f"connection lost ({lost.message})" if lost is not None else "no connection"
        return ConnectionFailedError(message, connector=self.name)

    # -- sending ----------------------------------------------------------------------

    async def send(self, message: Any, *, timeout: float | UseDefault | None = USE_DEFAULT) -> None:
        """Send ``message`` as JSON text (``str`` and ``bytes`` as they are). Raises
        SerializationError for a value that is not JSON, ConnectionFailedError when the
        connection is lost, ConnectorTimeoutError past ``timeout``."""
        data = message if isinstance(message, str | bytes) else self._encode(message)
        await self.run("send", lambda: self._reply_link().ws.send(data), timeout=timeout)

    async def send_message(
        self, request: str, request_id: str, body: dict[str, Any] | None = None
    ) -> None:
        """Answer ``request_id``: ``{"status": "success", "request", "request_id",
        "body"}``, on the connection the request came in on."""
        await self.send(_envelope.success_message(request, request_id, body or {}))

    async def send_error(
        self, request: str, request_id: str, code: str | int, message: str
    ) -> None:
        """Answer ``request_id`` with ``{"status": "error", "request", "request_id",
        "code", "message"}`` (the message scrubbed of known secrets)."""
        clean = self.redact(message)
        await self.send(_envelope.error_message(request, request_id, code, clean))

    def redact(self, text: str) -> str:
        """``text`` with every secret this connector knows masked (for logs, replies)."""
        return scrub_secrets(text, self._known_secrets())

    async def reconnect(self) -> None:
        """Make the connections again now (one attempt, bounded by ``connect_timeout``);
        ``connect()`` when not connected. Raises the ConnectorError of the attempt."""
        if not self.is_connected:
            await self.connect()
            return
        self._needs_reconnect = True
        await self._reconnect()

    @property
    def needs_reconnect(self) -> bool:
        """Whether a connection was lost and not made again yet."""
        return self._needs_reconnect

    async def wait_for_callbacks(self) -> None:
        """Wait until the async lifecycle callbacks still running have finished."""
        await self._events.drain()

    def _encode(self, message: Any) -> str:
        try:
            return _envelope.encode(message)
        except (TypeError, ValueError, RecursionError) as exc:
            error = SerializationError(
                f"cannot send a {type(message).__name__} as JSON: {type(exc).__name__}",
                connector=self.name,
            )
        raise error

    # -- the client side ----------------------------------------------------------------

    async def request(
        self,
        request: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | UseDefault | None = USE_DEFAULT,
        idempotent: bool = False,
    ) -> dict[str, Any]:
        """Send a request envelope and return the ``body`` of the reply with the same
        ``request_id``. Many may be in flight at once; a reply that comes after its
        request timed out is dropped with a log line.

        Raises ConnectorTimeoutError past ``timeout`` (default: the config's),
        ConnectionFailedError when the connection is lost first (retried, after a
        reconnect, only when ``idempotent``), and for an error envelope the ConnectorError
        of its ``code`` (``not_found`` -> NotFoundError, ...) or :class:`RemoteError`.
        """
        return await self.run(
            "request",
            lambda: self._request_once(request, body or {}),
            timeout=timeout,
            idempotent=idempotent,
        )

    async def _request_once(self, request: str, body: dict[str, Any]) -> dict[str, Any]:
        link = self._pick()
        request_id = str(next(self._ids))
        data = self._encode(_envelope.request_message(request, request_id, body))
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        pending = link.pending
        pending[request_id] = waiter
        try:
            await link.ws.send(data)
            reply = await waiter
        finally:
            pending.pop(request_id, None)
        if reply.get("status") == _envelope.SUCCESS:
            result = reply.get("body", {})
            return result if isinstance(result, dict) else {"value": result}
        raise remote_error(request, reply.get("code"), reply.get("message"))

    # -- receiving --------------------------------------------------------------------

    async def receive(self, *, timeout: float | None = None) -> Any:
        """The next message that is not a reply (decoded JSON, or the text/bytes as they
        came when not JSON). Raises ConnectorTimeoutError past ``timeout`` (None: wait)."""
        if not self.is_connected:
            raise NotConnectedError("receive() needs a connection", connector=self.name)
        try:
            async with asyncio.timeout(timeout):
                link, message = await self._inbox.get()
        except TimeoutError:
            raise ConnectorTimeoutError(
                f"no message within {timeout}s", connector=self.name
            ) from None
        _REPLY_LINK.set(link)
        return message

    async def messages(self) -> AsyncIterator[Any]:
        """Every message that is not a reply, as :meth:`receive` gives them, until
        cancelled. Replies sent while one is handled go back on its connection."""
        inbox = self._inbox
        while True:
            link, message = await inbox.get()
            _REPLY_LINK.set(link)
            yield message


def _default_opener(uri: str, /, **options: Any) -> Awaitable[ClientConnection]:
    return connect(uri, **options)


async def _abort(ws: ClientConnection) -> None:
    try:
        await ws.close()
    except Exception:  # closing after a failed connect: nothing to report
        return


def _derived_secrets(config: WebSocketConfig) -> tuple[str, ...]:
    """What the secret becomes on the wire: the whole header value, its JSON escape."""
    if config.secret is None:
        return ()
    secret = config.secret.get_secret_value()
    forms = {config.secret_prefix + secret, json.dumps(secret)[1:-1]}
    return tuple(form for form in forms if form and form != secret)
