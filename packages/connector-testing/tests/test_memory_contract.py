from typing import Any

import pytest

from connector_testing import ConnectorContractTests, MemoryConfig, MemoryConnector


class TestMemoryContract(ConnectorContractTests):
    connector_class = MemoryConnector

    @pytest.fixture
    def config(self) -> MemoryConfig:
        return MemoryConfig(store="contract", token="tok/3f9a@1c:secret", latency=0.0005)

    @pytest.fixture
    def unreachable_config(self) -> MemoryConfig:
        return MemoryConfig(
            store="contract",
            token="tok/3f9a@1c:secret",
            available=False,
            retry={"max_attempts": 2, "initial_delay": 0.001},
        )

    @pytest.fixture
    def invalid_config_fields(self) -> dict[str, Any]:
        return {"latency": -1, "store": "", "timeout": "soon"}

    @pytest.fixture
    def provoke_secret_echo(self) -> Any:
        async def echo(connector: MemoryConnector) -> None:
            # A "driver" failure quoting the token, chained on another that quotes it
            # (the token comes from the config, not this source, which tracebacks show).
            assert connector.config.token is not None
            token = connector.config.token.get_secret_value()
            try:
                raise KeyError(f"no store for token {token}")
            except KeyError as exc:
                failure = RuntimeError(f"store refused {token}")
                failure.__cause__ = exc
            connector.fail_next(failure)
            await connector.sample("anything")

        return echo
