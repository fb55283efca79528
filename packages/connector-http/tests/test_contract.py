"""The standard connector contracts, against the local test server: HttpConnector runs
the lifecycle and road suites, GraphQLConnector (composed from one) the lifecycle suite."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from connector_http import GraphQLConnector, HttpConfig, HttpConnector
from connector_testing import ConnectorContractTests, RoadContractTests, closed_port

pytestmark = pytest.mark.integration

TOKEN = "bearer-contract-4b6d8f0a"


class HttpFixtures:
    connector_class: Any = HttpConnector

    @pytest.fixture
    def config(self, server: Any) -> HttpConfig:
        return HttpConfig(
            base_url=server.url,
            health_path="/health",
            auth={"type": "bearer", "token": TOKEN},
            retry={"initial_delay": 0.01},
        )

    @pytest.fixture
    def unreachable_config(self) -> HttpConfig:
        return HttpConfig(
            base_url=f"http://127.0.0.1:{closed_port()}/api",
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


class TestHttpContract(HttpFixtures, ConnectorContractTests):
    @pytest.fixture
    def provoke_secret_echo(self) -> Any:
        async def echo(connector: HttpConnector) -> None:
            # The protected route answers 401 quoting the Authorization header it got.
            await connector.get("/v1/protected")

        return echo


class TestHttpRoad(HttpFixtures, RoadContractTests):
    @pytest.fixture
    def provoke_driver_error(self) -> Any:
        async def refused(connector: HttpConnector) -> None:
            await connector.get(f"http://127.0.0.1:{closed_port()}/nothing-listens")

        return refused

    @pytest.fixture
    def flaky_operation(self) -> Any:
        async def flaky(connector: HttpConnector, *, idempotent: bool) -> None:
            # The first call of a new key answers 503, later ones 200.
            path = f"/v1/flaky/{uuid.uuid4().hex}"
            method = "GET" if idempotent else "POST"
            await connector.request(method, path, params={"fail": 1, "code": 503})

        return flaky

    @pytest.fixture
    def rejected_config(self, server: Any) -> HttpConfig:
        return HttpConfig(
            base_url=server.url, health_path="/health", auth={"type": "bearer", "token": "nope"}
        )

    @pytest.fixture
    def rejected_operation(self) -> Any:
        async def protected_get(connector: HttpConnector) -> None:
            await connector.connect()  # HTTP has no login: the API refuses the request
            await connector.get("/v1/protected")

        return protected_get

    @pytest.fixture
    def slow_operation(self) -> Any:
        async def slow(connector: HttpConnector, timeout: float) -> None:
            await connector.get("/v1/slow", params={"delay": timeout * 4}, timeout=timeout)

        return slow


class TestGraphQLContract(HttpFixtures, ConnectorContractTests):
    """A composed connector runs the same lifecycle suite: its road is its HttpConnector."""

    connector_class = GraphQLConnector

    @pytest.fixture
    def road_of(self) -> Any:
        return lambda connector: connector.http

    @pytest.fixture
    def provoke_secret_echo(self) -> Any:
        async def echo(connector: GraphQLConnector) -> None:
            # The server quotes the caller's Authorization header in its GraphQL errors.
            await connector.query("{ whoami }", operation_name="EchoAuth")

        return echo
