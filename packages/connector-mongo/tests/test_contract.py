"""The standard contracts against the real server (FerretDB here): lifecycle and road.

The secrets tests of the lifecycle suite are xfailed: the FerretDB of scripts/services
runs without authentication, so no working config can hold a secret (a user and password
make it refuse the login). test_secrets.py checks refused logins and unreachable servers
with a password instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mongo_support import make_config, toxic

from connector_mongo import MongoConfig, MongoConnector
from connector_testing import (
    ConnectorContractTests,
    RoadContractTests,
    ToxiproxyClient,
    closed_port,
)

pytestmark = pytest.mark.integration

PROXY = "mongo"  # the Toxiproxy proxy of scripts/services in front of FerretDB
NO_SECRET = (
    "the FerretDB of scripts/services runs without authentication: a config holding a "
    "password cannot connect, so no working config holds a secret; test_secrets.py checks "
    "refused logins and unreachable servers with a password instead"
)


class MongoFixtures:
    connector_class: Any = MongoConnector

    @pytest.fixture
    def config(self, mongo_url: str) -> MongoConfig:
        return make_config(mongo_url)


class TestMongoContract(MongoFixtures, ConnectorContractTests):
    @pytest.fixture
    def unreachable_config(self) -> MongoConfig:
        return make_config(
            f"mongodb://ann:not-the-password-4f1@127.0.0.1:{closed_port()}/",
            connect_timeout=2.0,
            server_selection_timeout=1.0,
            retry={"max_attempts": 2, "initial_delay": 0.01, "max_delay": 0.02},
        )

    @pytest.fixture
    def invalid_config_fields(self) -> dict[str, Any]:
        return {
            "hosts": ("db:0",),
            "pool_max": "many",
            "read_preference": "closest",
            "database": "a.b",
            "w": -3,
        }

    @pytest.fixture
    def provoke_secret_echo(self) -> Any:
        async def echo(connector: MongoConnector) -> None:
            raise AssertionError("never reached: the configs hold no secret")

        return echo

    @pytest.mark.xfail(reason=NO_SECRET, strict=True)
    def test_secret_absent_from_repr_str_and_dump(
        self, config: MongoConfig, connector: Any, secret_value: str | None
    ) -> None:
        super().test_secret_absent_from_repr_str_and_dump(config, connector, secret_value)

    @pytest.mark.xfail(reason=NO_SECRET, strict=True)
    async def test_secret_absent_from_logs_and_errors(
        self,
        config: MongoConfig,
        unreachable_config: MongoConfig,
        provoke_secret_echo: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        await super().test_secret_absent_from_logs_and_errors(
            config, unreachable_config, provoke_secret_echo, caplog
        )


class TestMongoRoad(MongoFixtures, RoadContractTests):
    """Through the Toxiproxy proxy, so that the server can fail for real."""

    @pytest.fixture
    def config(self, mongo_proxy_url: str) -> MongoConfig:
        return make_config(
            mongo_proxy_url,
            server_selection_timeout=1.0,
            retry={"max_attempts": 3, "initial_delay": 0.05, "max_delay": 0.1},
        )

    @pytest.fixture
    def connector(self, config: MongoConfig, toxiproxy: ToxiproxyClient) -> MongoConnector:
        async def heal_then_sleep(delay: float) -> None:
            # The road's one wait before a retry: the server comes back meanwhile.
            toxiproxy.set_enabled(PROXY, True)
            await asyncio.sleep(delay)

        return MongoConnector(config, sleep=heal_then_sleep)

    @pytest.fixture
    def provoke_driver_error(self) -> Any:
        async def bad_command(connector: MongoConnector) -> None:
            await connector.command({"noSuchCommand4c1e": 1})

        return bad_command

    @pytest.fixture
    def flaky_operation(self, toxiproxy: ToxiproxyClient) -> Any:
        async def flaky(connector: MongoConnector, *, idempotent: bool) -> None:
            # The proxy is cut: the first call finds no server (a transient failure);
            # the connector's sleep before a retry restores it.
            toxiproxy.set_enabled(PROXY, False)
            try:
                if idempotent:
                    await connector.command({"ping": 1}, idempotent=True)
                else:
                    await connector.command({"ping": 1})
            finally:
                toxiproxy.set_enabled(PROXY, True)

        return flaky

    @pytest.fixture
    def rejected_config(self, mongo_url: str) -> MongoConfig:
        # FerretDB without authentication refuses every login.
        return make_config(mongo_url, user="nobody", password="not-the-password-77")

    @pytest.fixture
    def slow_operation(self, toxiproxy: ToxiproxyClient) -> Any:
        async def slow(connector: MongoConnector, timeout: float) -> None:
            with toxic(toxiproxy, PROXY, "latency", latency=int(timeout * 4000)):
                await connector.command({"ping": 1}, idempotent=True, timeout=timeout)

        return slow
