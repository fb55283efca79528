"""KafkaEventPublisher: domain events to a Kafka topic, keyed by entity.

Needs the ``kafka`` extra (``pip install 'connector-adapters[kafka]'``); importing
``connector_adapters`` does not, so the connector is imported when a publisher is made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from connector_adapters._domain import DomainEvent
from connector_core import InvalidRequestError, SyncWriteError

if TYPE_CHECKING:
    from connector_kafka import DeliveryReport, KafkaConnector

EVENT_TYPE_HEADER = "event-type"
SOURCE_SYSTEM_HEADER = "source-system"
CORRELATION_ID_HEADER = "correlation-id"
EVENT_ID_HEADER = "event-id"

TopicOf = Callable[[DomainEvent], str]


def _bytes_serializers() -> tuple[Any, Any]:
    try:
        from connector_kafka import BytesSerializer
    except ImportError as exc:
        raise ImportError(
            "KafkaEventPublisher needs the Kafka connector: pip install 'connector-adapters[kafka]'"
        ) from exc
    return BytesSerializer(), BytesSerializer()


class KafkaEventPublisher:
    """An :class:`~connector_adapters.EventPublisher` writing each event to a Kafka topic.

    The key is the event's ``entity_id`` (one entity's events share a partition, so they
    stay in order); the value is the :class:`DomainEvent` as JSON; headers carry
    ``event-type``, ``source-system``, ``event-id`` and, when the event has one,
    ``correlation-id`` (UTF-8). ``publish`` returns once the broker acknowledged the
    message (the connector's ``acks``, ``all`` by default) and raises the connector's
    ConnectorError otherwise.

    ``topic`` is a topic name, or a function of the event returning one (per entity
    type, say). The publisher does not own ``kafka``: connect and disconnect it around
    the publisher's use. Events of a transaction (``async with kafka.transaction()``)
    are published in it.
    """

    def __init__(self, kafka: KafkaConnector, topic: str | TopicOf) -> None:
        self._keys, self._values = _bytes_serializers()
        if not callable(topic) and not (isinstance(topic, str) and topic):
            raise InvalidRequestError(
                "topic must be a topic name or a function of the event", connector="kafka"
            )
        self.kafka = kafka
        self._topic = topic

    def topic_for(self, event: DomainEvent) -> str:
        """The topic ``event`` goes to."""
        return self._topic(event) if callable(self._topic) else self._topic

    async def publish(self, event: DomainEvent) -> None:
        """Send ``event`` and wait for the broker's acknowledgement."""
        await self.publish_and_report(event)

    async def publish_many(self, events: Sequence[DomainEvent]) -> None:
        """Send ``events`` (in order, each keyed by its entity) in the producer's batches
        and wait for every acknowledgement. Raises SyncWriteError naming the events not
        acknowledged (the others are written: publish them all again, consumers see an
        event twice at most per retry), or the connector's ConnectorError."""
        from connector_kafka import OutgoingMessage

        by_topic: dict[str, list[Any]] = {}
        for event in events:
            message = OutgoingMessage(
                event.model_dump_json().encode(),
                key=event.entity_id.encode(),
                headers=self._headers(event),
            )
            by_topic.setdefault(self.topic_for(event), []).append(message)
        for topic, messages in by_topic.items():
            result = await self.kafka.produce_many(
                topic, messages, key_serializer=self._keys, value_serializer=self._values
            )
            if result.failed:
                first = "; ".join(
                    f"#{e.index} {e.code.value}: {e.message}" for e in result.errors[:3]
                )
                raise SyncWriteError(
                    f"{result.failed} of {len(messages)} events to topic {topic!r} were not "
                    f"acknowledged; first errors: {first or 'none given'}",
                    errors=result.errors,
                )

    def _headers(self, event: DomainEvent) -> list[tuple[str, bytes]]:
        headers = [
            (EVENT_TYPE_HEADER, event.type.encode()),
            (SOURCE_SYSTEM_HEADER, event.source_system.encode()),
            (EVENT_ID_HEADER, event.id.encode()),
        ]
        if event.correlation_id is not None:
            headers.append((CORRELATION_ID_HEADER, event.correlation_id.encode()))
        return headers

    async def publish_and_report(self, event: DomainEvent) -> DeliveryReport:
        """As :meth:`publish`, returning where the event was written."""
        return await self.kafka.produce(
            self.topic_for(event),
            event.model_dump_json().encode(),
            key=event.entity_id.encode(),
            headers=self._headers(event),
            key_serializer=self._keys,
            value_serializer=self._values,
        )
