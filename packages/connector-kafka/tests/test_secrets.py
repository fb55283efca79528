"""Secrets never leave the connector: SASL configs, refused and failed connects, errors
that quote a secret learnt at run time, dead-letter headers, and aiokafka's own logs.

The lifecycle suite's secret tests run on the broker's SASL listener (test_contract.py),
and test_sasl.py logs in with every mechanism; these check refusals by a listener that
does not speak SASL, and a secret the connector learns at run time."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from kafka_support import make_config

from connector_core import ConnectorError, NotFoundError
from connector_kafka import DeadLetter, HandlerError, KafkaConfig, KafkaConnector, KafkaMessage
from connector_testing import closed_port, record_texts, secret_leaks, shown_texts, unique_name

pytestmark = pytest.mark.integration

SECRET = "Zq7S3cr3tKafkaPw9"


def _sasl(bootstrap: str) -> KafkaConfig:
    return make_config(
        bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="svc",
        sasl_password=SECRET,
        connect_timeout=3.0,
        retry={"max_attempts": 2, "initial_delay": 0.01, "max_delay": 0.02},
    )


class LearnsASecret(KafkaConnector):
    """A connector that learnt a secret at run time (a token from a vault, say): the
    hook ``_known_secrets()`` is where such a connector says so."""

    def _known_secrets(self) -> tuple[str, ...]:
        return (*super()._known_secrets(), SECRET)


def test_a_sasl_config_shows_no_secret(kafka_bootstrap: str) -> None:
    config = _sasl(kafka_bootstrap)
    connector = KafkaConnector(config)
    texts = shown_texts(config, connector, config.connection_string())
    assert secret_leaks(texts, [SECRET]) == []
    assert "svc:***@" in config.connection_string()


async def test_refused_and_failed_logins_show_no_secret(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # aiokafka's request logs included
    shown: list[Any] = []
    for bootstrap in (kafka_bootstrap, f"127.0.0.1:{closed_port()}"):
        connector = KafkaConnector(_sasl(bootstrap))
        with pytest.raises(ConnectorError) as caught:
            await connector.connect()
        shown += [caught.value, await connector.check(), connector, connector.stats]
    texts = shown_texts(*shown) + record_texts(caplog.records)
    assert secret_leaks(texts, [SECRET]) == []


async def test_a_secret_quoted_back_by_the_broker_is_masked(kafka_bootstrap: str) -> None:
    connector = LearnsASecret(make_config(kafka_bootstrap))
    async with connector:
        with pytest.raises(NotFoundError) as caught:
            await connector.describe_topic(SECRET)  # the driver's error names the topic
    texts = shown_texts(caught.value)
    assert secret_leaks(texts, [SECRET]) == []
    assert "***" in str(caught.value)


async def test_handler_errors_and_dead_letters_show_no_secret(
    kafka_bootstrap: str, topic: str
) -> None:
    connector = LearnsASecret(make_config(kafka_bootstrap, value_format="json"))
    async with connector:
        await connector.produce_many(topic, [{"n": 1}, {"n": 2}])
        after_the_letter = asyncio.Event()

        async def refuses(message: KafkaMessage[str, Any]) -> None:
            if message.value["n"] == 2:  # in partition order: #1 was dead-lettered
                after_the_letter.set()
                return
            raise PermissionError(f"token {SECRET} was refused")

        quick = DeadLetter(attempts=1)
        runner = asyncio.create_task(
            connector.process(topic, refuses, group_id=unique_name("g"), dlq=quick)
        )
        async with asyncio.timeout(60):
            await after_the_letter.wait()
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        (letter,) = [m async for m in connector.read_messages(f"{topic}.dlq")]
        assert b"***" in (letter.header("dlq.error") or b"")
        headers = [value.decode(errors="replace") for _, value in letter.headers]
        assert secret_leaks(headers, [SECRET]) == []
        with pytest.raises(HandlerError) as caught:
            async with asyncio.timeout(60):
                await connector.process(topic, refuses, group_id=unique_name("g"), dlq=None)
    assert secret_leaks(shown_texts(caught.value), [SECRET]) == []


def test_aiokafka_debug_logs_are_scrubbed(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    sasl = KafkaConnector(_sasl(kafka_bootstrap))
    learnt = LearnsASecret(make_config(kafka_bootstrap))  # a secret known at run time only
    caplog.set_level(logging.DEBUG, logger="aiokafka")
    # What aiokafka logs when it sends PLAIN credentials in a SaslAuthenticate request
    # (a SASL listener is needed to make it do so for real; see the README).
    logging.getLogger("aiokafka.conn").debug(
        "Request to %s:%d %d: %s",
        "broker",
        9092,
        3,
        f"SaslAuthenticateRequest_v0(sasl_auth_bytes=b'\\x00svc\\x00{SECRET}')",
    )
    logging.getLogger("aiokafka.producer.sender").warning("token %s refused", SECRET)
    assert not sasl.is_connected
    assert not learnt.is_connected
    texts = record_texts(caplog.records)
    assert secret_leaks(texts, [SECRET]) == []
    assert sum("***" in record.getMessage() for record in caplog.records) == 2
