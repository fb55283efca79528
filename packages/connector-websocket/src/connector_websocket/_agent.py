"""WebSocketAgent: a long-running service holding a WebSocket to a backend, receiving
requests over it and answering them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, ParamSpec, Protocol, Self, TypeVar, runtime_checkable

from connector_core import (
    USE_DEFAULT,
    CheckResult,
    ConfigError,
    ConnectionFailedError,
    ConnectorError,
    EventInfo,
    LifecycleEvent,
    RetryPolicy,
    StatsSnapshot,
    UseDefault,
)
from connector_websocket import _envelope
from connector_websocket._config import WebSocketConfig
from connector_websocket._connector import Opener, WebSocketConnector, __version__

P = ParamSpec("P")
T = TypeVar("T")

# Errors that reconnecting cannot cure: the agent stops with them.
_FINAL_CODES = frozenset({"authentication", "permission_denied", "config"})


class AgentEvent(StrEnum):
    """The agent's own moments (the core's :class:`~connector_core.LifecycleEvent`\\ s
    are there too, through :meth:`WebSocketAgent.register_callback`)."""

    ON_STARTUP = "on_startup"
    """The startup routine ran; the agent is about to connect."""
    ON_CONNECT = "on_connect"
    """A connection is established: the first one and every reconnect."""
    ON_STOP = "on_stop"
    """A graceful stop (``stop()``, SIGTERM, cancellation) is complete: nothing runs."""


@dataclass(frozen=True, slots=True)
class AgentEventInfo:
    """What an agent callback receives."""

    event: AgentEvent
    agent: str
    connects: int
    """Connections made so far (1 at the first ON_CONNECT)."""
    timestamp: float = field(default_factory=time.time)


AgentCallback = Callable[[AgentEventInfo], "Awaitable[object] | object"]


@runtime_checkable
class StartupRoutine(Protocol):
    """Run once by ``start()``/``run()`` before the agent connects (load a model, warm a
    cache). An exception stops the agent before it connects."""

    async def run(self) -> None: ...


Sleep = Callable[[float], Awaitable[object]]


class WebSocketAgent:
    """Base class of a service that holds a WebSocket to a backend and answers its
    requests. Subclass it and implement either :meth:`handle` (most services: the agent
    reads requests, calls it, sends the reply or an error envelope) or :meth:`receiver`
    (to consume the messages yourself).

    The agent is built on a :class:`WebSocketConnector` (``self.connection``, the
    connection; give your own to share or wrap it), and is a
    :class:`~connector_core.Connector` itself: ``connect``, ``disconnect``, ``ping``,
    ``check``, ``stats`` and ``on`` are the connection's.

    ``await agent.run()`` (or ``agent.start()`` in a script) runs the startup routine,
    fires ON_STARTUP, connects, and runs the receiver (and the heartbeat task when
    ``heartbeat_message`` is set) until :meth:`stop`; on a lost connection (closed,
    reset, unanswered keepalive ping) it cancels them, reconnects with exponential
    backoff and jitter (``config.reconnect``) and starts them again, unless
    ``throw_errors`` is set: then the error propagates out of ``run()``. An
    authentication, permission or config error always does. :meth:`cleanup` cancels
    every task the agent made and closes the sockets and the thread pool.
    """

    name: ClassVar[str] = "websocket-agent"
    version: ClassVar[str] = __version__

    def __init__(
        self,
        config: WebSocketConfig | None = None,
        *,
        connection: WebSocketConnector | None = None,
        logger: logging.Logger | None = None,
        options: Mapping[str, Any] | None = None,
        startup: StartupRoutine | None = None,
        opener: Opener | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Args:
        config: the connection, secret, heartbeat, reconnect and handler settings
            (or give ``connection``, whose config is used).
        connection: the connection (default: ``WebSocketConnector(config, opener=...)``).
        logger: where the agent logs (default ``connector.websocket-agent``).
        options: runtime options for the subclass (read-only as ``self.options``).
        startup: run before connecting (see :class:`StartupRoutine`).
        opener: opens one connection (default ``websockets.asyncio.client.connect``).
        sleep: the wait between reconnect attempts (inject a fake in tests).

        Raises TypeError when the class implements neither handle() nor receiver(),
        ConfigError when neither or both of config and connection are given.
        """
        cls = type(self)
        if cls.receiver is WebSocketAgent.receiver and cls.handle is WebSocketAgent.handle:
            raise TypeError(f"{cls.__name__} must implement handle() or receiver()")
        if (config is None) == (connection is None):
            raise ConfigError(
                f"{cls.__name__} needs a config or a connection (one of them)",
                connector=self.name,
            )
        if connection is None:
            assert config is not None
            connection = WebSocketConnector(config, opener=opener)
        self.connection: WebSocketConnector = connection
        self.config: WebSocketConfig = connection.config
        self.logger = logger or logging.getLogger(f"connector.{self.name}")
        self.options: Mapping[str, Any] = MappingProxyType(dict(options or {}))
        self._startup = startup
        self._sleep = sleep
        self._callbacks: dict[AgentEvent, list[AgentCallback]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._stopping: asyncio.Event | None = None
        self._fatal: asyncio.Future[BaseException] | None = None
        self._connects = 0
        connection.wait_when_inbox_full = True  # a busy agent slows its socket, drops nothing
        rc = self.config.reconnect
        self._backoff = RetryPolicy(
            max_attempts=rc.max_attempts or 1_000_000,
            initial_delay=rc.initial_delay,
            max_delay=rc.max_delay,
            multiplier=rc.multiplier,
            jitter=rc.jitter,
            deadline=None,
        )
        connection.on(LifecycleEvent.CONNECT, self._connected)
        connection.on(LifecycleEvent.RECONNECT, self._connected)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.connection!r})"

    # -- the connection's face ----------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self.connection.is_connected

    @property
    def stats(self) -> StatsSnapshot:
        return self.connection.stats

    def on(self, event: LifecycleEvent, callback: Callable[[EventInfo], Any]) -> Callable[[], None]:
        """Subscribe to a core lifecycle event of the connection."""
        return self.connection.on(event, callback)

    async def connect(self) -> None:
        await self.connection.connect()

    async def disconnect(self) -> None:
        await self.connection.disconnect()

    async def ping(self) -> float:
        return await self.connection.ping()

    async def check(self) -> CheckResult:
        return await self.connection.check()

    async def __aenter__(self) -> Self:
        await self.connection.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.cleanup()

    async def send_message(
        self, request: str, request_id: str, body: dict[str, Any] | None = None
    ) -> None:
        """Answer ``request_id`` with a success envelope (see the connector's)."""
        await self.connection.send_message(request, request_id, body)

    async def send_error(
        self, request: str, request_id: str, code: str | int, message: str
    ) -> None:
        """Answer ``request_id`` with an error envelope (see the connector's)."""
        await self.connection.send_error(request, request_id, code, message)

    async def request(
        self,
        request: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | UseDefault | None = USE_DEFAULT,
        idempotent: bool = False,
    ) -> dict[str, Any]:
        """Ask the peer (see :meth:`WebSocketConnector.request`)."""
        return await self.connection.request(request, body, timeout=timeout, idempotent=idempotent)

    def messages(self) -> AsyncIterator[Any]:
        """The connection's incoming messages that are not replies."""
        return self.connection.messages()

    # -- what subclasses implement ------------------------------------------------------

    async def handle(self, request: str, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one request: return the reply's body. Raise a ConnectorError to send
        its code and message in an error envelope (anything else: code 500). Runs
        concurrently with other requests (at most ``handler_concurrency``); put blocking
        or CPU-bound work in :meth:`run_blocking`."""
        raise NotImplementedError

    async def receiver(self) -> None:
        """Consume incoming messages until cancelled. The default reads requests and
        answers each with :meth:`handle`; override it to read ``self.messages()``
        yourself (answer with :meth:`send_message` / :meth:`send_error`)."""
        slots = self._handler_slots()
        async for message in self.messages():
            parsed = _envelope.as_request(message)
            if isinstance(parsed, str):
                self.logger.warning("ignored a message that is not a request: %s", parsed)
                continue
            await slots.acquire()
            task = self._track(asyncio.create_task(self._handle_one(parsed)))
            task.add_done_callback(lambda _: slots.release())

    # -- callbacks ----------------------------------------------------------------------

    def register_callback(
        self, kind: AgentEvent | LifecycleEvent, callback: Callable[[Any], Any]
    ) -> Callable[[], None]:
        """Call ``callback`` (sync or async) on ``kind``: an :class:`AgentEvent` (it gets
        an :class:`AgentEventInfo`) or a core :class:`~connector_core.LifecycleEvent` (it
        gets an :class:`~connector_core.EventInfo`). A failing callback is logged, never
        raised. Returns a function that unregisters it."""
        if isinstance(kind, LifecycleEvent):
            return self.on(kind, callback)
        callbacks = self._callbacks.setdefault(AgentEvent(kind), [])
        callbacks.append(callback)

        def unregister() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return unregister

    async def _fire(self, event: AgentEvent) -> None:
        info = AgentEventInfo(event=event, agent=self.name, connects=self._connects)
        for callback in tuple(self._callbacks.get(event, ())):
            try:
                result = callback(info)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.logger.exception("%s callback failed", event.value)

    def _connected(self, info: EventInfo) -> None:
        self._connects += 1
        if self._callbacks.get(AgentEvent.ON_CONNECT):
            self._track(asyncio.create_task(self._fire(AgentEvent.ON_CONNECT)))

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the agent in a new event loop until stopped (SIGTERM stops it gracefully,
        Ctrl-C too). For scripts; inside a running loop use ``await agent.run()``."""
        asyncio.run(self._run_with_signals())

    async def _run_with_signals(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signal.SIGTERM, self.stop)
        try:
            await self.run()
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGTERM)

    def stop(self) -> None:
        """Ask a running agent to stop: ``run()`` cleans up, fires ON_STOP and returns."""
        if self._stopping is not None:
            self._stopping.set()

    @property
    def is_running(self) -> bool:
        return self._stopping is not None

    async def run(self) -> None:
        """Run the startup routine, fire ON_STARTUP, then connect and serve until
        :meth:`stop` or cancellation (both graceful: ON_STOP fires after
        :meth:`cleanup`). Raises the error that ended it otherwise (see the class)."""
        if self._stopping is not None:
            raise RuntimeError("the agent is already running")
        self._stopping = asyncio.Event()
        self._fatal = asyncio.get_running_loop().create_future()
        graceful = False
        try:
            if self._startup is not None:
                await self._startup.run()
            await self._fire(AgentEvent.ON_STARTUP)
            await self._serve()
            graceful = True
        except asyncio.CancelledError:
            graceful = True
            raise
        finally:
            await asyncio.shield(self.cleanup())
            self._stopping = None
            if graceful:
                await asyncio.shield(self._fire(AgentEvent.ON_STOP))

    async def _serve(self) -> None:
        stopping = self._stopping
        assert stopping is not None
        loop = asyncio.get_running_loop()
        limit = self.config.reconnect.max_attempts
        # Backoff steps: one per failed attempt and per connection lost soon after it was
        # made, so that a server that accepts and drops at once is not dialled in a tight
        # loop; a connection that stayed up max_delay seconds starts the count again.
        steps = 0
        failed = 0  # consecutive failed attempts, bounded by max_attempts
        while not stopping.is_set():
            if steps:
                delay = self._backoff.backoff(steps)
                self.logger.info("reconnecting in %.2fs", delay)
                await self._sleep_unless_stopped(delay)
                if stopping.is_set():
                    return
            try:
                if not self.connection.is_connected:
                    await self.connection.connect()
                elif self.connection.needs_reconnect:
                    await self.connection.reconnect()
            except ConnectorError as error:
                failed += 1
                steps += 1
                if (
                    self.config.throw_errors
                    or error.code.value in _FINAL_CODES
                    or (limit is not None and failed >= limit)
                ):
                    raise
                self.logger.warning("connection attempt %d failed: %s", failed, error)
                continue
            failed = 0
            since = loop.time()
            lost = await self._serve_connection()
            if lost is None:
                return
            if self.config.throw_errors or lost.code.value in _FINAL_CODES:
                raise lost
            self.logger.warning("reconnecting: %s", lost)
            stable = loop.time() - since >= self.config.reconnect.max_delay
            steps = 1 if stable else steps + 1

    async def _serve_connection(self) -> ConnectorError | None:
        """Run the receiver (and heartbeat) until the connection is lost (its error),
        :meth:`stop` (None) or a fatal handler error (raised)."""
        stopping, fatal = self._stopping, self._fatal
        assert stopping is not None
        assert fatal is not None
        tasks = [self._track(asyncio.create_task(self.receiver(), name="websocket-receiver"))]
        if self.config.heartbeat_message is not None:
            tasks.append(self._track(asyncio.create_task(self._heartbeat(), name="heartbeat")))
        lost = asyncio.create_task(self.connection.connection_lost.wait())
        stop = asyncio.create_task(stopping.wait())
        watched: set[asyncio.Future[Any]] = {*tasks, lost, stop, fatal}
        try:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*tasks, lost, stop):
                task.cancel()
            await asyncio.gather(*tasks, lost, stop, return_exceptions=True)
        if fatal in done:
            raise fatal.result()
        if stop in done:
            return None
        for task in tasks:
            if task in done and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                assert exc is not None
                if self.config.throw_errors or not isinstance(exc, ConnectorError):
                    self.logger.error("%s failed", task.get_name(), exc_info=exc)
                if self.config.throw_errors:
                    raise exc
                if isinstance(exc, ConnectorError):
                    return exc
                return ConnectorError(
                    f"{task.get_name()} failed: {type(exc).__name__}", connector=self.name
                )
        return self.connection.lost_error or ConnectionFailedError(
            "connection lost", connector=self.connection.name
        )

    async def _sleep_unless_stopped(self, delay: float) -> None:
        stopping = self._stopping
        assert stopping is not None
        sleeper = asyncio.ensure_future(self._sleep(delay))
        stop = asyncio.create_task(stopping.wait())
        try:
            await asyncio.wait({sleeper, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stop.cancel()
            await asyncio.gather(sleeper, stop, return_exceptions=True)

    async def _heartbeat(self) -> None:
        """The application heartbeat: ``heartbeat_message`` on every connection, every
        ``heartbeat_interval``. (Protocol pings are websockets' keepalive: a pong missing
        for ``pong_timeout`` closes the connection, which the agent sees as lost.)"""
        interval = self.config.heartbeat_interval
        assert interval is not None
        data = _envelope.encode(self.config.heartbeat_message or {})
        while True:
            await asyncio.sleep(interval)
            for ws in self.connection.connections():
                await ws.send(data)

    # -- handling -----------------------------------------------------------------------

    def _handler_slots(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.handler_concurrency)
        return self._slots

    async def _handle_one(self, incoming: _envelope.IncomingRequest) -> None:
        request, request_id = incoming.request, incoming.request_id
        try:
            body = await self.handle(request, request_id, incoming.body)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, ConnectorError):
                code: str | int = exc.code.value
                message = self.connection.redact(exc.message)
                self.logger.warning("%s %s failed: %s", request, request_id, message)
            else:
                code, message = (
                    _envelope.INTERNAL_ERROR_CODE,
                    f"internal error ({type(exc).__name__})",
                )
                self.logger.error("%s %s failed", request, request_id, exc_info=True)
            await self._reply(self.send_error(request, request_id, code, message))
            if self.config.throw_errors and self._fatal is not None and not self._fatal.done():
                self._fatal.set_result(exc)
            return
        await self._reply(self.send_message(request, request_id, body or {}))

    async def _reply(self, sending: Coroutine[Any, Any, None]) -> None:
        try:
            await sending
        except ConnectorError as error:
            # The connection went away meanwhile: the peer re-asks after reconnecting.
            self.logger.warning("could not send a reply: %s", error)

    async def run_blocking(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking or CPU-bound ``fn(*args, **kwargs)`` in the agent's thread
        pool (``blocking_workers`` threads), so the heartbeat and other requests go on.
        CPU-bound Python code still shares the GIL: use a process pool inside ``fn``
        for heavy computing."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self.config.blocking_workers, thread_name_prefix="websocket-agent"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # -- cleanup ------------------------------------------------------------------------

    def _track(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The tasks the agent made that still run (receiver, heartbeat, handlers)."""
        return frozenset(self._tasks)

    async def cleanup(self) -> None:
        """Cancel every task the agent made, close the sockets and the thread pool.
        Idempotent; ``run()`` calls it on the way out."""
        while self._tasks:
            tasks = tuple(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.connection.disconnect()
        await self.connection.wait_for_callbacks()
        self._slots = None
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
