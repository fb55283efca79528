"""Bytes consumers have aiokafka build each KafkaMessage in its own pass
(docs/decisions/0100): the messages are the ones the codec would have decoded, by
batches and by the iterator, and a driver without the hooked names is left alone."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from kafka_support import make_config

from connector_kafka import BytesSerializer, KafkaConnector, KafkaMessage, OutgoingMessage
from connector_kafka._prebuilt import SUPPORTED, install
from connector_testing import unique_name

WAIT = 60


class CopyingBytes(BytesSerializer):
    """The bytes serializer under another type: the general decoding path."""


def test_the_installed_aiokafka_takes_the_hook() -> None:
    # A new aiokafka without the fetcher names would silently consume at the old cost.
    assert SUPPORTED


def test_a_fetcher_without_the_hooked_names_is_left_alone() -> None:
    consumer = SimpleNamespace(_fetcher=SimpleNamespace(_records={}))  # a plain dict
    assert install(consumer) is False
    assert type(consumer._fetcher._records) is dict
    assert install(SimpleNamespace()) is False


async def _read(
    connector: KafkaConnector, topic: str, n: int, *, batches: bool, **serializers: Any
) -> list[KafkaMessage[Any, Any]]:
    found: list[KafkaMessage[Any, Any]] = []
    async with (
        asyncio.timeout(WAIT),
        connector.consume(topic, group_id=unique_name("g"), **serializers) as consumer,
    ):
        if batches:
            async for batch in consumer.batches(max_records=7):
                found += batch
                if len(found) >= n:
                    break
        else:
            async for message in consumer:
                found.append(message)
                if len(found) >= n:
                    break
        assert consumer.positions() == {(topic, 0): n}
        # The driver built the messages only where keys and values are plain bytes.
        assert consumer._prebuilt is (not serializers)
    return found


@pytest.mark.integration
@pytest.mark.parametrize("batches", [True, False], ids=["batches", "iterator"])
async def test_prebuilt_messages_equal_decoded_ones(
    kafka_bootstrap: str, make_topic: Any, batches: bool
) -> None:
    topic = await make_topic()
    outgoing = [
        OutgoingMessage(
            f"v{i}".encode(),
            key=None if i % 3 else f"k{i}".encode(),
            headers=[("h", f"{i}".encode()), ("h", b"again")] if i % 2 else None,
            timestamp=1_700_000_000_000 + i,
        )
        for i in range(30)
    ]
    plain = BytesSerializer()
    connector = KafkaConnector(
        make_config(kafka_bootstrap), key_serializer=plain, value_serializer=plain
    )
    async with connector:
        assert (await connector.produce_many(topic, outgoing)).ok
        fast = await _read(connector, topic, 30, batches=batches)
        general = await _read(
            connector,
            topic,
            30,
            batches=batches,
            key_serializer=CopyingBytes(),
            value_serializer=CopyingBytes(),
        )
    assert all(type(m) is KafkaMessage for m in fast)
    assert fast == general
    assert [m.offset for m in fast] == list(range(30))
    assert fast[1].header("h") == b"again"
    assert fast[3].headers == (("h", b"3"), ("h", b"again"))
    assert fast[0].key == b"k0"
    assert fast[1].key is None
    assert fast[5].timestamp_ms == 1_700_000_000_005
