"""SASL for real: the broker's SASL_PLAINTEXT listener (``kafka_sasl_url``, decision 0075)
with each mechanism, a refused password, and configs from a ``user:password@`` URL.

Every test looks for the password in what the connector shows: repr, str, dumps, URLs,
errors with their whole chains, and log records at DEBUG (aiokafka's request logs, which
carry PLAIN credentials, included)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from kafka_support import sasl_config, sasl_password

import connector_core
from connector_core import AuthenticationError, ConfigError, LifecycleEvent
from connector_kafka import KafkaConfig, KafkaConnector, KafkaMessage
from connector_testing import (
    exception_texts,
    record_texts,
    secret_leaks,
    shown_texts,
    unique_name,
)

pytestmark = pytest.mark.integration

WAIT = 60  # seconds any wait for messages may take on a loaded machine
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _with_mechanism(url: str, mechanism: str) -> str:
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith("sasl_mechanism=")]
    return f"{base}?{'&'.join([*kept, f'sasl_mechanism={mechanism}'])}"


async def _round_trip(connector: KafkaConnector, topic: str) -> list[KafkaMessage[Any, Any]]:
    """Create ``topic``, produce three messages, consume them in a new group (the group
    coordinator and the fetches authenticate too), delete the topic."""
    await connector.create_topic(topic, partitions=1)
    try:
        reports = [await connector.produce(topic, f"m{i}".encode(), key=f"k{i}") for i in range(2)]
        result = await connector.produce_many(topic, [b"m2"])
        assert result.ok, result.errors
        assert [r.offset for r in reports] == [0, 1]
        got: list[KafkaMessage[Any, Any]] = []
        async with connector.consume(topic, group_id=unique_name("g")) as consumer:
            async with asyncio.timeout(WAIT):
                async for message in consumer:
                    got.append(message)
                    if len(got) == 3:
                        break
        return got
    finally:
        await connector.delete_topic(topic)


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_each_mechanism_connects_produces_and_consumes(
    kafka_sasl_url: str, unique_topic: str, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # aiokafka logs every request it sends at DEBUG
    secret = sasl_password(kafka_sasl_url)
    config = sasl_config(kafka_sasl_url, sasl_mechanism=mechanism)
    assert config.sasl_mechanism.value == mechanism
    connector = KafkaConnector(config)
    async with connector:
        assert await connector.ping() > 0
        got = await _round_trip(connector, unique_topic)
        check = await connector.check()
    assert [(m.key, m.value) for m in got] == [("k0", b"m0"), ("k1", b"m1"), (None, b"m2")]
    assert check.ok, check.error
    texts = shown_texts(config, connector, connector.stats, check) + record_texts(caplog.records)
    assert secret_leaks(texts, [secret]) == []
    if mechanism == "PLAIN":  # the request that carried the password was logged, masked
        sent = [
            r.getMessage() for r in caplog.records if "SaslAuthenticateRequest" in r.getMessage()
        ]
        assert sent, "aiokafka logged no SaslAuthenticateRequest at DEBUG"
        assert all("***" in text for text in sent)


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_a_wrong_password_is_an_authentication_error_not_retried(
    kafka_sasl_url: str, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = f"wrong-{sasl_password(kafka_sasl_url)}-Xy9"
    config = sasl_config(
        kafka_sasl_url,
        sasl_mechanism=mechanism,
        sasl_password=wrong,
        retry={"max_attempts": 5, "initial_delay": 0.01, "max_delay": 0.02},
    )
    connector = KafkaConnector(config)
    retries: list[Any] = []
    connector.on(LifecycleEvent.RETRY, retries.append)
    with pytest.raises(AuthenticationError) as caught:
        await connector.connect()
    check = await connector.check()
    await connector.disconnect()
    error = caught.value
    assert not error.transient
    assert retries == []
    assert connector.stats.retries == 0
    assert not check.ok
    assert check.error_code == "authentication"
    # The driver's refusal is chained, and no text of the chain holds the password.
    assert error.__cause__ is not None
    assert "SaslAuthenticationFailed" in type(error.__cause__).__name__
    texts = [*exception_texts(error), *shown_texts(check, connector, connector.stats, config)]
    texts += record_texts(caplog.records)
    assert secret_leaks(texts, [wrong]) == []


async def test_from_url_with_credentials_works_and_never_shows_the_password(
    kafka_sasl_url: str, unique_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = sasl_password(kafka_sasl_url)
    assert f":{secret}@" in kafka_sasl_url  # the URL itself carries user:password@
    built = connector_core.from_url(kafka_sasl_url)  # through the registry's scheme
    assert isinstance(built, KafkaConnector)
    connector = KafkaConnector.from_url(kafka_sasl_url, connect_timeout=10.0)
    assert connector.config.sasl_username == "connector"
    assert connector.config.connection_string() == (
        f"kafka://connector:***@{','.join(connector.config.bootstrap_servers)}"
    )
    async with connector:
        got = await _round_trip(connector, unique_topic)
    assert len(got) == 3
    # A URL that is wrong elsewhere: the ConfigError names the field, not the password.
    with pytest.raises(ConfigError) as refused:
        KafkaConfig.from_url(kafka_sasl_url + "&acks=2&linger=-1")
    assert {"acks", "linger"} <= {f.split(".")[0] for f in refused.value.fields}
    texts = shown_texts(built, built.config, connector, connector.config, refused.value)
    texts += [connector.config.connection_string(), str(connector.config.model_dump())]
    texts += record_texts(caplog.records)
    assert secret_leaks(texts, [secret]) == []
    assert connector.config.connection_string(reveal=True) == kafka_sasl_url.split("/?")[0]
