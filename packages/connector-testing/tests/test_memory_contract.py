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
