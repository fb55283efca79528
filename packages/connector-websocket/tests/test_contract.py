"""The standard contracts on a real websockets server: lifecycle, config and secrets
(the client secret in the handshake header), and the operation road."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ws_support import SECRET, Backend, running_backend

from connector_core import ConnectorTimeoutError
from connector_testing import ConnectorContractTests, RoadContractTests, closed_port
from connector_websocket import WebSocketConfig, WebSocketConnector

pytestmark = pytest.mark.integration


class WebSocketFixtures:
    connector_class: Any = WebSocketConnector

    @pytest.fixture
    async def server(self) -> AsyncIterator[Backend]:
        async with running_backend() as backend:
            yield backend

    @pytest.fixture
    def config(self, server: Backend) -> WebSocketConfig:
        return server.config(retry={"max_attempts": 3, "initial_delay": 0.01, "max_delay": 0.05})


class TestWebSocketContract(WebSocketFixtures, ConnectorContractTests):
    @pytest.fixture
    def unreachable_config(self) -> WebSocketConfig:
        return WebSocketConfig(
            url=f"ws://127.0.0.1:{closed_port()}/agent",
            secret=SECRET,
            connect_timeout=2.0,
            retry={"max_attempts": 2, "initial_delay": 0.01, "max_delay": 0.02},
        )

    @pytest.fixture
    def invalid_config_fields(self) -> dict[str, Any]:
        return {
            "url": "http://example.com/",
            "heartbeat_interval": -1,
            "pool_size": 0,
            "secret_header": "bad header",
            "compression": "brotli",
            "max_message_size": 0,
        }

    @pytest.fixture
    def provoke_secret_echo(self) -> Any:
        async def echo(connector: WebSocketConnector) -> None:
            # The server answers with an error envelope quoting the Authorization header.
            await connector.request("quote_secret")

        return echo


class TestWebSocketRoad(WebSocketFixtures, RoadContractTests):
    @pytest.fixture
    def provoke_driver_error(self, server: Backend) -> Any:
        async def too_big(connector: WebSocketConnector) -> None:
            # The server's websockets refuses a message over 1 MiB and closes (1009):
            # the request fails with websockets' ConnectionClosedError as its cause.
            await connector.request("echo", {"blob": "x" * 2_000_000})

        return too_big

    @pytest.fixture
    def flaky_operation(self) -> Any:
        async def flaky(connector: WebSocketConnector, *, idempotent: bool) -> None:
            # The server drops the connection the first time it sees this key.
            key = uuid.uuid4().hex
            await connector.request("drop_once", {"key": key}, idempotent=idempotent)

        return flaky

    @pytest.fixture
    def rejected_config(self, server: Backend) -> WebSocketConfig:
        return server.config(secret="not-the-secret")

    @pytest.fixture
    def slow_operation(self) -> Any:
        async def slow(connector: WebSocketConnector, timeout: float) -> None:
            await connector.request("sleep", {"seconds": timeout * 4}, timeout=timeout)

        return slow


async def test_a_timed_out_request_leaves_the_connection_usable(backend: Backend) -> None:
    async with WebSocketConnector(backend.config()) as ws:
        with pytest.raises(ConnectorTimeoutError):
            await ws.request("sleep", {"seconds": 0.5}, timeout=0.05)
        assert await ws.request("echo", {"n": 1}) == {"n": 1}
        await asyncio.sleep(0)
