from __future__ import annotations

import socket
from typing import Any

import pytest

from connector_postgres import PostgresConfig, PostgresConnector
from connector_testing import ConnectorContractTests

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestPostgresContract(ConnectorContractTests):
    connector_class = PostgresConnector

    @pytest.fixture
    def config(self, secret_role_url: str) -> PostgresConfig:
        return PostgresConfig.from_url(secret_role_url, pool_min=1, pool_max=2)

    @pytest.fixture
    def unreachable_config(self, config: PostgresConfig) -> PostgresConfig:
        return PostgresConfig.model_validate(
            {
                **config.model_dump(),
                "port": _closed_port(),
                "connect_timeout": 2.0,
                "retry": {"max_attempts": 2, "initial_delay": 0.01, "max_delay": 0.02},
            }
        )

    @pytest.fixture
    def invalid_config_fields(self) -> dict[str, Any]:
        return {"port": 70000, "pool_max": "many", "sslmode": "sometimes", "command_timeout": -1}

    @pytest.fixture
    def provoke_secret_echo(self, config: PostgresConfig) -> Any:
        assert config.password is not None
        password = config.password.get_secret_value()

        async def echo(connector: PostgresConnector) -> None:
            # The server quotes the bad value: invalid input syntax for type integer: "pw-..."
            await connector.query("SELECT $1::int", password)

        return echo
