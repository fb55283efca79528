"""KafkaEventPublisher: domain events to a Kafka topic, keyed by entity.

Needs the ``kafka`` extra (``pip install 'connector-adapters[kafka]'``); importing
``connector_adapters`` does not, so the connector is imported when a publisher is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connector_adapters._domain import DomainEvent
from connector_core import InvalidRequestError

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

    async def publish_and_report(self, event: DomainEvent) -> DeliveryReport:
        """As :meth:`publish`, returning where the event was written."""
        headers = [
            (EVENT_TYPE_HEADER, event.type.encode()),
            (SOURCE_SYSTEM_HEADER, event.source_system.encode()),
            (EVENT_ID_HEADER, event.id.encode()),
        ]
        if event.correlation_id is not None:
            headers.append((CORRELATION_ID_HEADER, event.correlation_id.encode()))
        return await self.kafka.produce(
            self.topic_for(event),
            event.model_dump_json().encode(),
            key=event.entity_id.encode(),
            headers=headers,
            key_serializer=self._keys,
            value_serializer=self._values,
        )
