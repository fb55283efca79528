"""KafkaTransaction: what can be done inside ``async with kafka.transaction()``."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from connector_core import InvalidRequestError, WriteResult
from connector_kafka._consumer import KafkaConsumer
from connector_kafka._messages import (
    DeliveryReport,
    Headers,
    OutgoingMessage,
    Timestamp,
    TopicPartition,
)

SendOffsets = Callable[[dict[TopicPartition, int], str], Awaitable[None]]

CURRENT: contextvars.ContextVar[KafkaTransaction | None] = contextvars.ContextVar(
    "connector_kafka_transaction", default=None
)
"""The transaction the current task has open (the connector's produce calls join it)."""


class KafkaTransaction:
    """An open transaction: messages produced through it, and consumer offsets sent
    with :meth:`commit_offsets`, become visible together when the ``async with`` block
    ends, or not at all when it raises (consumers with ``isolation_level=
    read_committed`` never see aborted messages)."""

    def __init__(
        self,
        owner: object,
        produce: Callable[..., Awaitable[DeliveryReport]],
        produce_many: Callable[..., Awaitable[WriteResult]],
        send_offsets: SendOffsets,
    ) -> None:
        self.owner = owner
        self._produce = produce
        self._produce_many = produce_many
        self._send_offsets = send_offsets
        self.active = True
        self.sent_offsets: list[tuple[KafkaConsumer[Any, Any], dict[TopicPartition, int]]] = []
        """Offsets sent for consumers: applied to them once the transaction commits."""

    def _check(self) -> None:
        if not self.active:
            raise InvalidRequestError(
                "this transaction has ended: open a new one with transaction()", connector="kafka"
            )

    async def produce(
        self,
        topic: str,
        value: Any,
        *,
        key: Any = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp: Timestamp | None = None,
    ) -> DeliveryReport:
        """Produce one message in this transaction (as :meth:`KafkaConnector.produce`)."""
        self._check()
        return await self._produce(
            topic, value, key=key, headers=headers, partition=partition, timestamp=timestamp
        )

    async def produce_many(
        self, topic: str, messages: Iterable[OutgoingMessage[Any, Any] | Any]
    ) -> WriteResult:
        """Produce messages in this transaction (as :meth:`KafkaConnector.produce_many`)."""
        self._check()
        return await self._produce_many(topic, messages)

    async def commit_offsets(
        self,
        consumed: KafkaConsumer[Any, Any] | Mapping[TopicPartition | tuple[str, int], int],
        group_id: str | None = None,
    ) -> None:
        """Commit consumer offsets as part of this transaction (consume-transform-produce,
        exactly once): a :class:`KafkaConsumer`'s positions (every message it yielded,
        the one in hand included) for its group, or ``{(topic, partition): next
        offset}`` for ``group_id``."""
        self._check()
        if isinstance(consumed, KafkaConsumer):
            offsets = consumed.positions()
            group = group_id or consumed.group_id
        else:
            offsets = {TopicPartition(*tp): int(o) for tp, o in consumed.items()}
            group = group_id
        if not group:
            raise InvalidRequestError(
                "commit_offsets needs the consumer group's id", connector="kafka"
            )
        if not offsets:
            return
        await self._send_offsets(offsets, group)
        if isinstance(consumed, KafkaConsumer):
            self.sent_offsets.append((consumed, offsets))

    def committed(self) -> None:
        """The transaction committed: the consumers' offsets sent in it are committed."""
        self.active = False
        for consumer, offsets in self.sent_offsets:
            consumer.offsets_committed(offsets)
