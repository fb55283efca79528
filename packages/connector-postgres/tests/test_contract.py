"""PostgresConnector runs every contract suite that applies to it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from connector_postgres import PostgresConfig, PostgresConnector
from connector_testing import (
    ConnectorContractTests,
    DiscoverableContractTests,
    ReadableContractTests,
    RoadContractTests,
    WritableContractTests,
    closed_port,
    unique_name,
)

pytestmark = pytest.mark.integration


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
                "port": closed_port(),
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


class PostgresStreams:
    """A connector on this module's own database, with one pooled connection (the one
    ``flaky_operation`` kills); each stream is a new table there."""

    connector_class = PostgresConnector

    @pytest.fixture
    def config(self, postgres_database_url: str, config_for: Any) -> PostgresConfig:
        app = unique_name("contract")
        config: PostgresConfig = config_for(
            postgres_database_url, pool_min=1, pool_max=1, application_name=app
        )
        return config

    @pytest.fixture
    def make_stream(self) -> Any:
        async def make(pg: PostgresConnector, rows: Sequence[dict[str, Any]]) -> str:
            name = unique_name("stream")
            timestamps = bool(rows) and isinstance(rows[0]["updated_at"], dt.datetime)
            cursor = "timestamptz" if timestamps else "bigint"
            await pg.execute(
                f"CREATE TABLE {name} (id bigint PRIMARY KEY, updated_at {cursor}, name text)"
            )
            rows_in = [(r["id"], r["updated_at"], r["name"]) for r in rows]
            await pg.execute_many(f"INSERT INTO {name} VALUES ($1, $2, $3)", rows_in)
            return name

        return make

    @pytest.fixture
    def read_options(self) -> dict[str, Any]:
        return {"cursor_field": "updated_at"}


class TestPostgresRoad(PostgresStreams, RoadContractTests):
    @pytest.fixture
    def provoke_driver_error(self) -> Any:
        return lambda pg: pg.query("SELECT 1 / 0")

    @pytest.fixture
    def flaky_operation(
        self, config: PostgresConfig, postgres_database_url: str, terminate_unnoticed: Any
    ) -> Any:
        async def flaky(pg: PostgresConnector, *, idempotent: bool) -> None:
            await pg.execute("CREATE TABLE IF NOT EXISTS flaky_t (id int)")
            # The pooled backend dies before the next call, which meets a dead connection.
            assert terminate_unnoticed(postgres_database_url, config.application_name) == 1
            if idempotent:
                await pg.query("SELECT count(*) FROM flaky_t")
            else:
                await pg.execute("INSERT INTO flaky_t VALUES (1)")

        return flaky

    @pytest.fixture
    def rejected_config(self, config: PostgresConfig) -> PostgresConfig:
        return PostgresConfig.model_validate({**config.model_dump(), "password": "wrong-pw"})

    @pytest.fixture
    def slow_operation(self) -> Any:
        async def slow(pg: PostgresConnector, timeout: float) -> None:
            # The road's own per-call timeout around a statement that outlasts it.
            sleep = "SELECT pg_sleep($1)"
            await pg.run("slow", lambda: pg.query_value(sleep, timeout * 10), timeout=timeout)

        return slow


class TestPostgresReadable(PostgresStreams, ReadableContractTests):
    """The suite on the default ``scan="cursor"``, a fetch of 3 rows per round trip, so
    that checkpoints and limits fall inside and across fetches."""

    @pytest.fixture
    def read_options(self) -> dict[str, Any]:
        return {"cursor_field": "updated_at", "scan": "cursor", "batch_size": 3}


class TestPostgresWritable(PostgresStreams, WritableContractTests):
    @pytest.fixture
    def rejected_record(self) -> dict[str, Any]:
        return {"id": 3, "updated_at": "three", "name": "r3"}  # text for a bigint


class TestPostgresDiscoverable(PostgresStreams, DiscoverableContractTests):
    pass


class TestPostgresReadableKeyset(PostgresStreams, ReadableContractTests):
    """The same suite with ``scan="keyset"``: a query per page instead of one cursor."""

    @pytest.fixture
    def read_options(self) -> dict[str, Any]:
        return {"cursor_field": "updated_at", "scan": "keyset", "batch_size": 3}
