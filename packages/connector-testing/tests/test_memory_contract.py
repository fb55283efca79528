"""MemoryConnector runs every contract suite."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from connector_core import ConnectionFailedError
from connector_testing import (
    ConnectorContractTests,
    DiscoverableContractTests,
    MemoryConfig,
    MemoryConnector,
    ReadableContractTests,
    RoadContractTests,
    WritableContractTests,
    unique_name,
)

TOKEN = "tok/3f9a@1c:secret"


class MemoryFixtures:
    connector_class = MemoryConnector

    @pytest.fixture
    def config(self) -> MemoryConfig:
        return MemoryConfig(store="contract", token=TOKEN, latency=0.0005)

    @pytest.fixture
    def make_stream(self) -> Any:
        async def make(connector: MemoryConnector, rows: Sequence[dict[str, Any]]) -> str:
            name = unique_name("stream")
            connector.create_stream(name, primary_key=("id",), cursor_field="updated_at")
            if rows:
                assert (await connector.write(name, rows)).ok
            return name

        return make


class TestMemoryContract(MemoryFixtures, ConnectorContractTests):
    @pytest.fixture
    def unreachable_config(self) -> MemoryConfig:
        return MemoryConfig(
            store="contract",
            token=TOKEN,
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


class TestMemoryRoad(MemoryFixtures, RoadContractTests):
    @pytest.fixture
    def provoke_driver_error(self) -> Any:
        async def provoke(connector: MemoryConnector) -> None:
            connector.fail_next(ValueError("the store's driver broke"))
            await connector.sample("anything")

        return provoke

    @pytest.fixture
    def flaky_operation(self) -> Any:
        async def flaky(connector: MemoryConnector, *, idempotent: bool) -> None:
            stream = unique_name("flaky")
            # A stream with a key takes upserts (idempotent); one without, appends.
            connector.create_stream(stream, primary_key=("id",) if idempotent else ())
            connector.fail_next(ConnectionFailedError("connection reset", connector="memory"))
            await connector.write(stream, [{"id": 1}])

        return flaky

    @pytest.fixture
    def rejected_config(self) -> MemoryConfig:
        return MemoryConfig(store="contract", token="wrong-token", expected_token=TOKEN)

    @pytest.fixture
    def slow_operation(self) -> Any:
        async def slow(connector: MemoryConnector, timeout: float) -> None:
            await connector.run("slow", lambda: asyncio.sleep(timeout * 4), timeout=timeout)

        return slow


class TestMemoryReadable(MemoryFixtures, ReadableContractTests):
    pass


class TestMemoryWritable(MemoryFixtures, WritableContractTests):
    @pytest.fixture
    def rejected_record(self) -> dict[str, Any]:
        return {"updated_at": 3, "name": "no key"}  # the key is missing


class TestMemoryDiscoverable(MemoryFixtures, DiscoverableContractTests):
    pass
