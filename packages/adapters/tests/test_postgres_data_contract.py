"""The PostgreSQL data clients, managed and mock, held to connector_core's Readable and
Discoverable contracts (the suites every connector runs): what StreamSync relies on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from adapters_postgres_data_fixtures import Tables

from connector_adapters.postgres_data import (
    ManagedPostgresData,
    MockPostgresData,
    PostgresDataConfig,
)
from connector_core import FieldType
from connector_testing import DiscoverableContractTests, ReadableContractTests, unique_name


def _fields(records: Sequence[dict[str, Any]]) -> dict[str, FieldType]:
    stamp = bool(records) and isinstance(records[0]["updated_at"], dt.datetime)
    return {
        "id": FieldType.INTEGER,
        "updated_at": FieldType.DATETIME if stamp else FieldType.INTEGER,
        "name": FieldType.STRING,
    }


async def _make_stream(client: Any, records: Sequence[dict[str, Any]]) -> str:
    return await Tables(client).create(unique_name("t"), _fields(records), records)


class TestMockContract(ReadableContractTests, DiscoverableContractTests):
    connector_class = MockPostgresData

    @pytest.fixture
    def config(self) -> PostgresDataConfig:
        return PostgresDataConfig()

    @pytest.fixture
    def make_stream(self) -> Any:
        return _make_stream


@pytest.mark.integration
class TestManagedContract(ReadableContractTests, DiscoverableContractTests):
    connector_class = ManagedPostgresData

    @pytest.fixture
    def config(self, postgres_database_url: str) -> PostgresDataConfig:
        return PostgresDataConfig(postgres=postgres_database_url)

    @pytest.fixture
    def make_stream(self) -> Any:
        return _make_stream
