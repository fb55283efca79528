"""BatchEvents: a StreamSync's applied batches as domain events, one per record, keyed by
entity (the record's key)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from connector_adapters._domain import DomainEvent
from connector_adapters._ports import EventPublisher
from connector_core import Record, config_error
from connector_core.sync import SyncBatch


@runtime_checkable
class _PublishesMany(Protocol):
    async def publish_many(self, events: Sequence[DomainEvent]) -> None: ...


class BatchEvents:
    """An ``on_batch`` for :class:`connector_core.sync.StreamSync` that publishes a
    :class:`DomainEvent` per record of every applied batch through ``publisher``.

    Events: ``type`` is ``<entity_type>.upserted`` (``.deleted`` for a record the sync's
    ``deleted_field`` marks), ``entity_type`` is ``entity_type`` or else the sink stream,
    ``entity_id`` the record's key (its one key field's value as text; the JSON list of
    the values for a composite key; the entity type for a stream without a key, so its
    events stay in one order), ``payload`` the record, ``correlation_id`` the sync's
    name unless given. :class:`KafkaEventPublisher` keys each message by ``entity_id``,
    so one entity's events stay in order on one partition while consumer groups spread
    the entities over their members. A publisher with ``publish_many`` (Kafka's) gets a
    batch in one call; others get ``publish`` per event.

    Events go out after the sink has the batch and before its checkpoint, so every
    record's event is published at least once: a batch whose run died between the two
    is applied and published again by the next run (the same entity, a new event id).
    Consumers that apply events by entity (upserts) see the same end state.

    Raises ConfigError naming every bad argument; when called, what the publisher raises
    (the batch is then not checkpointed, and the run raises).
    """

    def __init__(
        self,
        publisher: EventPublisher | object,
        *,
        source_system: str,
        entity_type: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        problems: list[tuple[str, str]] = []
        if not isinstance(publisher, EventPublisher):
            problems.append(("publisher", "must be an EventPublisher (publish)"))
        if not source_system:
            problems.append(("source_system", "must not be empty"))
        if entity_type is not None and not entity_type:
            problems.append(("entity_type", "must not be empty (None: the sink stream)"))
        if problems:
            raise config_error("BatchEvents", problems)
        assert isinstance(publisher, EventPublisher)
        self.publisher: EventPublisher = publisher
        self.source_system = source_system
        self.entity_type = entity_type
        self.correlation_id = correlation_id

    def __repr__(self) -> str:
        return f"BatchEvents(source_system={self.source_system!r})"

    def events(self, batch: SyncBatch) -> list[DomainEvent]:
        """The events of ``batch``, in its order."""
        entity_type = self.entity_type or batch.sink_stream
        correlation = self.correlation_id or batch.name
        return [
            DomainEvent(
                type=f"{entity_type}.{'deleted' if batch.is_deleted(r) else 'upserted'}",
                source_system=self.source_system,
                entity_type=entity_type,
                entity_id=_entity_id(r, batch.key_fields, entity_type),
                payload=dict(r),
                correlation_id=correlation,
            )
            for r in batch.records
        ]

    async def __call__(self, batch: SyncBatch) -> None:
        events = self.events(batch)
        if isinstance(self.publisher, _PublishesMany):
            await self.publisher.publish_many(events)
            return
        for event in events:
            await self.publisher.publish(event)


def _entity_id(record: Record, key_fields: tuple[str, ...], fallback: str) -> str:
    if not key_fields:
        return fallback
    if len(key_fields) == 1:
        return _text(record.get(key_fields[0]))
    return json.dumps([_plain(record.get(k)) for k in key_fields], separators=(",", ":"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(_plain(value))


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
