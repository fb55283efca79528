"""Faults injected with Toxiproxy on the broker's proxy listener (the broker advertises the
proxy's address there, so every connection of these clients goes through it)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from kafka_support import make_config, toxic

from connector_core import ConnectorError, ConnectorTimeoutError
from connector_kafka import KafkaConnector
from connector_testing import ToxiproxyClient

pytestmark = pytest.mark.integration

PROXY = "kafka"
REQUEST_TIMEOUT = 2.0


async def _outcome(call: Awaitable[Any]) -> tuple[BaseException | None, float]:
    """What ``call`` raised (None if nothing), and how long it took."""
    started = time.monotonic()
    try:
        await call
    except ConnectorError as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


@pytest.fixture
async def proxied(kafka_proxy_bootstrap: str) -> AsyncIterator[KafkaConnector]:
    connector = KafkaConnector(
        make_config(
            kafka_proxy_bootstrap,
            value_format="json",
            request_timeout=REQUEST_TIMEOUT,
            # A short cooldown: the outage may open the breaker; recovery is the point.
            circuit_breaker={"failure_threshold": 5, "cooldown": 0.5},
        )
    )
    async with connector:
        yield connector


async def test_acked_messages_survive_a_broker_outage_exactly_once(
    proxied: KafkaConnector, kafka: KafkaConnector, topic: str, toxiproxy: ToxiproxyClient
) -> None:
    acked: list[int] = []
    failed: list[tuple[int, str]] = []
    next_id = iter(range(1_000_000))
    phase = {"name": "before"}
    acked_in: Counter[str] = Counter()
    progress = asyncio.Condition()

    async def sender() -> None:
        while phase["name"] != "done":
            n = next(next_id)
            try:
                await proxied.produce(topic, {"n": n})
            except ConnectorError as exc:
                failed.append((n, exc.code.value))
            else:
                acked.append(n)
                acked_in[phase["name"]] += 1
                async with progress:
                    progress.notify_all()

    async def until(condition: Any) -> None:
        async with asyncio.timeout(60), progress:
            await progress.wait_for(condition)

    senders = [asyncio.create_task(sender()) for _ in range(4)]
    try:
        await until(lambda: acked_in["before"] >= 100)
        # The broker is gone for three seconds: every connection through the proxy is
        # reset, new ones too. In-flight batches fail; the producer sends them again.
        with toxic(toxiproxy, PROXY, "reset_peer", timeout=300) as outage:
            phase["name"] = "outage"
            await asyncio.sleep(3)
            outage.require()
        phase["name"] = "after"
        await until(lambda: acked_in["after"] >= 100)
        # Then acknowledgements are lost: the broker writes, but its answers arrive after
        # the request timeout, so the producer sends the same batches again. Only the
        # idempotent producer's sequence numbers keep the broker from writing them twice.
        with toxic(toxiproxy, PROXY, "latency", latency=int(REQUEST_TIMEOUT * 1250)) as late:
            phase["name"] = "late acks"
            await asyncio.sleep(3)
            late.require()
        phase["name"] = "recovered"
        await until(lambda: acked_in["recovered"] >= 100)
    finally:
        phase["name"] = "done"
        await asyncio.gather(*senders)
    stored = Counter([r["n"] async for r in kafka.read(topic)])
    assert [n for n in acked if stored[n] != 1] == [], "an acked message is missing or doubled"
    assert [n for n, count in stored.items() if count > 1] == [], "a message was written twice"
    assert acked_in["recovered"] >= 100, "the producer did not recover"
    assert proxied.is_connected
    assert proxied.stats.reconnects == 0  # the driver reconnected; the caller did nothing
    # The outage was real: sends waited or failed meanwhile.
    assert failed or acked_in["outage"] < acked_in["before"]


async def test_latency_beyond_the_request_timeout_is_a_timeout(
    proxied: KafkaConnector, topic: str, toxiproxy: ToxiproxyClient
) -> None:
    await proxied.produce(topic, {"warm": True})  # metadata known before the toxic
    # On connections already open (the admin client's for ping, the producer's): after a
    # timed-out request aiokafka closes its connection, and opening one under this latency
    # fails as an unreachable broker (ConnectionFailedError), not as a timeout.
    with toxic(toxiproxy, PROXY, "latency", latency=int(REQUEST_TIMEOUT * 3000)) as slow:
        ping_error, ping_took = await _outcome(proxied.ping())
        produce_error, produce_took = await _outcome(proxied.produce(topic, {"late": True}))
        slow.require()
    assert isinstance(ping_error, ConnectorTimeoutError), repr(ping_error)
    assert isinstance(produce_error, ConnectorTimeoutError), repr(produce_error)
    # The bound: within the request timeout plus a second.
    assert produce_took <= REQUEST_TIMEOUT + 1
    assert ping_took <= REQUEST_TIMEOUT + 1
    assert proxied.is_connected
    await proxied.produce(topic, {"after": True})  # usable again, nothing to reconnect
