"""KafkaEventPublisher against the real broker: key, headers and JSON value of each event,
per-entity order, acknowledged before publish returns, the Chatwoot contact sync
publishing through it, and a StreamSync's batches published as events by BatchEvents."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator

import pytest

from connector_adapters import (
    BatchEvents,
    DomainEvent,
    EventPublisher,
    InMemoryEventPublisher,
    InMemoryStateStore,
    KafkaEventPublisher,
)
from connector_adapters.chatwoot import MockChatwoot, sync_contacts
from connector_core import ConfigError, InvalidRequestError, SyncWriteError
from connector_core.sync import StreamSync, SyncBatch
from connector_kafka import BytesSerializer, KafkaConfig, KafkaConnector, KafkaMessage
from connector_testing import MemoryConfig, MemoryConnector, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[KafkaConnector]:
    connector = KafkaConnector(KafkaConfig(bootstrap_servers=kafka_bootstrap, request_timeout=10))
    async with connector:
        yield connector


@pytest.fixture
async def topic(kafka: KafkaConnector, unique_topic: str) -> AsyncIterator[str]:
    await kafka.create_topic(unique_topic, partitions=3)
    yield unique_topic
    await kafka.delete_topic(unique_topic)


async def _messages(kafka: KafkaConnector, topic: str) -> list[KafkaMessage[bytes, bytes]]:
    raw = BytesSerializer()
    return [m async for m in kafka.read_messages(topic, key_serializer=raw, value_serializer=raw)]


def _event(entity: str, kind: str = "contact.updated", **fields: object) -> DomainEvent:
    return DomainEvent(
        type=kind, source_system="chatwoot", entity_type="contact", entity_id=entity, **fields
    )


async def test_an_event_is_acked_keyed_by_entity_with_its_headers(
    kafka: KafkaConnector, topic: str
) -> None:
    publisher = KafkaEventPublisher(kafka, topic)
    assert isinstance(publisher, EventPublisher)
    event = _event("42", "contact.created", correlation_id="run-7", payload={"name": "Ada"})
    before = sum((await kafka.end_offsets(topic)).values())
    report = await publisher.publish_and_report(event)
    # Acknowledged: the message is in the log when publish returns.
    assert sum((await kafka.end_offsets(topic)).values()) == before + 1
    (message,) = await _messages(kafka, topic)
    assert (message.partition, message.offset) == (report.partition, report.offset)
    assert message.key == b"42"
    assert DomainEvent.model_validate_json(message.value or b"") == event
    assert message.header("event-type") == b"contact.created"
    assert message.header("source-system") == b"chatwoot"
    assert message.header("correlation-id") == b"run-7"
    assert message.header("event-id") == event.id.encode()
    await publisher.publish(_event("43"))  # no correlation id: no such header
    last = [m for m in await _messages(kafka, topic) if m.key == b"43"]
    assert [m.header("correlation-id") for m in last] == [None]


async def test_events_of_one_entity_keep_their_order(kafka: KafkaConnector, topic: str) -> None:
    publisher = KafkaEventPublisher(kafka, topic)
    for n in range(5):
        for entity in ("a", "b", "c", "d"):
            await publisher.publish(_event(entity, payload={"n": n}))
    by_entity: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for message in await _messages(kafka, topic):
        assert message.key is not None
        n = DomainEvent.model_validate_json(message.value or b"").payload["n"]
        by_entity[message.key].append((message.partition, n))
    for entity, seen in by_entity.items():
        assert len({p for p, _ in seen}) == 1, f"{entity!r} spread over partitions"
        assert [n for _, n in seen] == list(range(5))


async def test_topic_per_event_and_refusals(kafka: KafkaConnector, topic: str) -> None:
    publisher = KafkaEventPublisher(kafka, lambda event: f"{topic}" if event.entity_id else "x")
    assert publisher.topic_for(_event("1")) == topic
    with pytest.raises(InvalidRequestError):
        await KafkaEventPublisher(kafka, "not a valid topic").publish(_event("1"))
    with pytest.raises(InvalidRequestError, match="topic"):
        KafkaEventPublisher(kafka, "")


async def test_the_chatwoot_contact_sync_publishes_through_it(
    kafka: KafkaConnector, topic: str
) -> None:
    client = MockChatwoot()
    ids = client.seed_contacts(6)
    sink = MemoryConnector(MemoryConfig(store=unique_name("cw")))
    async with sink:
        sink.create_stream("chatwoot_contacts", primary_key=("chatwoot_id",))
        report = await sync_contacts(
            client,
            sink,
            publisher=KafkaEventPublisher(kafka, topic),
            state=InMemoryStateStore(),
            correlation_id="sync-run-1",
        )
    MemoryConnector.reset_store(sink.config.store)
    assert report.created == 6
    messages = await _messages(kafka, topic)
    assert sorted(int(m.key or b"0") for m in messages) == sorted(ids)
    assert {m.header("event-type") for m in messages} == {b"contact.created"}
    assert {m.header("correlation-id") for m in messages} == {b"sync-run-1"}
    events = [DomainEvent.model_validate_json(m.value or b"") for m in messages]
    assert {e.payload["name"] for e in events} == {c.name for c in client.contacts.values()}


async def test_batch_events_publish_every_synced_record_keyed_by_entity(
    kafka: KafkaConnector, topic: str
) -> None:
    source = MemoryConnector(MemoryConfig(store=unique_name("src")))
    sink = MemoryConnector(MemoryConfig(store=unique_name("dst")))
    async with source, sink:
        source.create_stream("orders", primary_key=("id",), cursor_field="id")
        await source.write(
            "orders", [{"id": i, "total": i * 10, "gone": i == 3} for i in range(40)]
        )
        events = BatchEvents(KafkaEventPublisher(kafka, topic), source_system="shop")
        sync = StreamSync(source, "orders", sink, state=InMemoryStateStore(), batch_size=16,
                          deleted_field="gone", on_batch=events)  # fmt: skip
        await sync.run()
    for store in (source, sink):
        MemoryConnector.reset_store(store.config.store)
    messages = await _messages(kafka, topic)
    assert sorted(int(m.key or b"-1") for m in messages) == list(range(40))
    partitions: dict[bytes, int] = {}
    for message in messages:
        event = DomainEvent.model_validate_json(message.value or b"")
        assert message.key == event.entity_id.encode() == str(event.payload["id"]).encode()
        assert event.type == ("orders.deleted" if event.payload["id"] == 3 else "orders.upserted")
        assert (event.entity_type, event.source_system) == ("orders", "shop")
        assert event.correlation_id == "orders->orders"
        assert partitions.setdefault(message.key, message.partition) == message.partition
    assert len(set(partitions.values())) > 1  # entities spread over the partitions


async def test_batch_events_without_publish_many_and_with_composite_keys() -> None:
    publisher = InMemoryEventPublisher()
    events = BatchEvents(publisher, source_system="erp", entity_type="line")
    await events(SyncBatch("s", "lines", [{"order": 7, "n": "a"}], ("order", "n"), None))
    await events(SyncBatch("s", "lines", [{"v": 1}], (), None))
    assert [e.entity_id for e in publisher.events] == ['[7,"a"]', "line"]
    with pytest.raises(ConfigError) as caught:
        BatchEvents(object(), source_system="", entity_type="")
    assert set(caught.value.fields) == {"publisher", "source_system", "entity_type"}


async def test_publish_many_names_what_was_not_acknowledged(
    kafka: KafkaConnector, topic: str
) -> None:
    publisher = KafkaEventPublisher(kafka, topic)
    huge = _event("2", payload={"blob": "x" * 2_000_000})  # over the producer's request size
    with pytest.raises(SyncWriteError, match="1 of 3 events") as caught:
        await publisher.publish_many([_event("1"), huge, _event("3")])
    assert [e.index for e in caught.value.errors] == [1]
    assert sorted(m.key for m in await _messages(kafka, topic)) == [b"1", b"3"]
