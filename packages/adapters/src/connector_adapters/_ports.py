"""Ports every integration shares: where domain events go and where sync state lives.

The state-store port and its in-memory and file stores are connector-core's
(``connector_core.sync``), so the generic sync and the ``connector`` command line use the
same ones; they are re-exported here unchanged."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, runtime_checkable

from connector_adapters._domain import DomainEvent
from connector_core.sync import (
    FileStateStore,
    InMemoryStateStore,
    JsonObject,
    StateStore,
)

__all__ = [
    "EventPublisher",
    "FileStateStore",
    "InMemoryEventPublisher",
    "InMemoryStateStore",
    "JsonObject",
    "StateStore",
]


@runtime_checkable
class EventPublisher(Protocol):
    """Publishes domain events (in memory now; Kafka with the Kafka connector)."""

    async def publish(self, event: DomainEvent) -> None:
        """Publish one event. Raises a ConnectorError when the event cannot be delivered."""
        ...


class InMemoryEventPublisher:
    """Keeps published events in a list, in order; for tests, demos and offline use.

    ``subscribe(callback)`` adds a callback called with every event after it is stored.
    """

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []
        self._subscribers: list[Any] = []

    async def publish(self, event: DomainEvent) -> None:
        self.events.append(event)
        for callback in list(self._subscribers):
            result = callback(event)
            if asyncio.iscoroutine(result):
                await result

    def subscribe(self, callback: Any) -> None:
        """Call ``callback(event)`` (sync or async) for every event published from now on."""
        self._subscribers.append(callback)

    def of_type(self, event_type: str) -> list[DomainEvent]:
        """The published events whose ``type`` is ``event_type``."""
        return [e for e in self.events if e.type == event_type]

    def clear(self) -> None:
        self.events.clear()
