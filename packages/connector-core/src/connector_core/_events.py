"""Lifecycle events and their callbacks."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from connector_core._errors import ConnectorError


class LifecycleEvent(StrEnum):
    """What happens to a connector over its life.

    STARTUP: ``connect()`` begins. CONNECT: a connection is established.
    DISCONNECT: the connection is closed. RECONNECT: re-established after a
    connection-level failure. RETRY: an operation is about to be retried.
    ERROR: an operation or connect attempt failed. STOP: ``disconnect()`` finished.
    """

    STARTUP = "startup"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    RECONNECT = "reconnect"
    RETRY = "retry"
    ERROR = "error"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class EventInfo:
    """What a callback receives."""

    event: LifecycleEvent
    connector: str
    operation: str | None = None
    attempt: int | None = None
    delay: float | None = None
    error: ConnectorError | None = None
    timestamp: float = field(default_factory=time.time)


EventCallback = Callable[[EventInfo], "Awaitable[object] | object"]


class EventEmitter:
    """Holds callbacks per event. Sync callbacks run inline; async ones run as tasks.

    A failing callback is logged and never breaks the connector.
    """

    __slots__ = ("_callbacks", "_logger", "_tasks")

    def __init__(self, logger: logging.Logger) -> None:
        self._callbacks: dict[LifecycleEvent, list[EventCallback]] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._logger = logger

    def on(self, event: LifecycleEvent, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(info)`` on each ``event``; returns a function that unsubscribes."""
        callbacks = self._callbacks.setdefault(LifecycleEvent(event), [])
        callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    def has_listeners(self, event: LifecycleEvent) -> bool:
        return bool(self._callbacks.get(event))

    def emit(self, info: EventInfo) -> None:
        for callback in tuple(self._callbacks.get(info.event, ())):
            try:
                result = callback(info)
                if inspect.isawaitable(result):
                    task: asyncio.Task[object] = asyncio.ensure_future(_await(result))
                    self._tasks.add(task)
                    task.add_done_callback(self._done)
            except Exception:
                self._logger.exception("lifecycle callback for %s failed", info.event.value)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._logger.error("async lifecycle callback failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for async callbacks still running."""
        if self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)


async def _await(awaitable: Awaitable[object]) -> object:
    return await awaitable
