"""The standard connector contract, against the local test server."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from connector_http import HttpConfig, HttpConnector
from connector_testing import ConnectorContractTests

pytestmark = pytest.mark.integration

TOKEN = "bearer-contract-4b6d8f0a"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestHttpContract(ConnectorContractTests):
    connector_class = HttpConnector

    @pytest.fixture
    def config(self, server: Any) -> HttpConfig:
        return HttpConfig(
            base_url=server.url,
            health_path="/health",
            auth={"type": "bearer", "token": TOKEN},
        )

    @pytest.fixture
    def unreachable_config(self) -> HttpConfig:
        return HttpConfig(
            base_url=f"http://127.0.0.1:{_closed_port()}/api",
            auth={"type": "bearer", "token": TOKEN},
            connect_timeout=2,
            retry={"max_attempts": 2, "initial_delay": 0.01},
        )

    @pytest.fixture
    def invalid_config_fields(self) -> dict[str, Any]:
        return {
            "base_url": "ftp://example.com",
            "error_body_limit": -1,
            "timeouts": {"read": -1},
            "auth": {"type": "carrier-pigeon"},
        }

    @pytest.fixture
    def provoke_secret_echo(self) -> Any:
        async def echo(connector: HttpConnector) -> None:
            # The test server's protected route answers 401 quoting the Authorization
            # header it received ("Bearer <token>").
            await connector.get("/v1/protected")

        return echo
