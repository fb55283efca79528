"""Fixtures shared by the connector-kafka tests: a connected connector, topics made (and
deleted) per test."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kafka_support import make_config

from connector_kafka import KafkaConfig, KafkaConnector


@pytest.fixture
def config_for(kafka_bootstrap: str) -> Callable[..., KafkaConfig]:
    """``config_for(**overrides)``: a config for the test broker."""
    return lambda **overrides: make_config(kafka_bootstrap, **overrides)


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[KafkaConnector]:
    """A connected connector: string keys, JSON values."""
    connector = KafkaConnector(make_config(kafka_bootstrap, value_format="json"))
    async with connector:
        yield connector


MakeTopic = Callable[..., Awaitable[str]]


@pytest.fixture
async def make_topic(kafka_bootstrap: str, unique_topic: str) -> AsyncIterator[MakeTopic]:
    """``await make_topic(partitions=1, suffix="", **configs)``: a new topic, deleted (with
    its dead-letter topic) after the test."""
    admin = KafkaConnector(make_config(kafka_bootstrap))
    await admin.connect()
    made: list[str] = []

    async def make(partitions: int = 1, suffix: str = "", **configs: str) -> str:
        name = f"{unique_topic}{suffix}"[:240]
        await admin.create_topic(name, partitions=partitions, configs=configs)
        made.append(name)
        return name

    try:
        yield make
    finally:
        for name in made:
            for topic in (name, f"{name}.dlq"):
                with contextlib.suppress(Exception):  # gone, or never made (the DLQ)
                    await admin.delete_topic(topic)
        await admin.disconnect()


@pytest.fixture
async def topic(make_topic: MakeTopic) -> str:
    """A new one-partition topic."""
    return await make_topic()
