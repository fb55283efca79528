"""One real round trip per service started by scripts/services (or found otherwise)."""

from __future__ import annotations

import statistics
import time
from urllib.parse import unquote, urlsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from connector_testing import ToxiproxyClient

pytestmark = pytest.mark.integration


async def test_postgres_answers_a_select(postgres_url: str) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        assert await connection.fetchval("SELECT 40 + 2") == 42
        version = await connection.fetchval("SHOW server_version_num")
        assert int(version) >= 150000
    finally:
        await connection.close()


async def test_kafka_produce_and_consume_with_a_group(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(unique_topic, b"hello", key=b"k1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        unique_topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{unique_topic}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        message = await consumer.getone()
        assert (message.key, message.value) == (b"k1", b"hello")
        await consumer.commit()
        committed = await consumer.committed(next(iter(consumer.assignment())))
        assert committed == message.offset + 1
    finally:
        await consumer.stop()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_kafka_sasl_listener_authenticates(
    kafka_sasl_url: str, unique_topic: str, mechanism: str
) -> None:
    parts = urlsplit(kafka_sasl_url)
    producer = AIOKafkaProducer(
        bootstrap_servers=parts.netloc.rpartition("@")[2],
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=unquote(parts.username or ""),
        sasl_plain_password=unquote(parts.password or ""),
    )
    await producer.start()
    try:
        metadata = await producer.send_and_wait(unique_topic, b"over sasl")
        assert metadata.offset == 0
    finally:
        await producer.stop()


async def test_mongo_insert_and_find(mongo_url: str, unique_collection: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        mongo_url, serverSelectionTimeoutMS=10_000
    )
    try:
        collection = client["connector_test"][unique_collection]
        await collection.insert_one({"_id": "doc-1", "n": 7})
        found = await collection.find_one({"_id": "doc-1"})
        assert found == {"_id": "doc-1", "n": 7}
        await collection.drop()
    finally:
        await client.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
async def test_mongo_auth_server_requires_the_password(
    mongo_auth_url: str, unique_collection: str, mechanism: str
) -> None:
    from pymongo.errors import OperationFailure

    parts = urlsplit(mongo_auth_url)
    database = parts.path.strip("/")
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        mongo_auth_url, authMechanism=mechanism, serverSelectionTimeoutMS=10_000
    )
    try:
        collection = client[database][unique_collection]
        await collection.insert_one({"_id": "doc-1"})
        assert await collection.count_documents({}) == 1
        await collection.drop()
    finally:
        await client.close()
    wrong = mongo_auth_url.replace(f":{parts.password}@", ":not-the-password@")
    refused: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        wrong, authMechanism=mechanism, serverSelectionTimeoutMS=10_000
    )
    try:
        with pytest.raises(OperationFailure, match="Authentication failed"):
            await refused[database][unique_collection].find_one({})
    finally:
        await refused.close()


@pytest.mark.requires_mongodb
async def test_real_mongodb_commits_a_transaction(
    real_mongodb_url: str, unique_collection: str
) -> None:
    """Only where a real MongoDB is given (FerretDB lacks transactions): the harness's
    requires_mongodb path, deselected with its reason here."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        real_mongodb_url, serverSelectionTimeoutMS=10_000
    )
    try:
        collection = client["connector_test"][unique_collection]
        async with client.start_session() as session, await session.start_transaction():
            await collection.insert_one({"_id": "tx-1"}, session=session)
        assert await collection.find_one({"_id": "tx-1"}) == {"_id": "tx-1"}
        await collection.drop()
    finally:
        await client.close()


async def _round_trips(url: str, n: int = 5) -> float:
    connection = await asyncpg.connect(url, timeout=30)
    try:
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            await connection.fetchval("SELECT 1")
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)
    finally:
        await connection.close()


async def test_toxiproxy_latency_slows_postgres_and_removal_restores(
    toxiproxy: ToxiproxyClient, postgres_proxy_url: str
) -> None:
    before = await _round_trips(postgres_proxy_url)
    with toxiproxy.toxic("postgres", "latency", latency=500):
        during = await _round_trips(postgres_proxy_url, n=3)
    after = await _round_trips(postgres_proxy_url)
    # The toxic delays every downstream chunk by 500 ms; a round trip waits for one.
    assert during >= 0.45, (before, during, after)
    assert after < 0.25, (before, during, after)
    assert toxiproxy.toxics("postgres") == []
