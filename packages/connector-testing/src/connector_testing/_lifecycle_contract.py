"""ConnectorContractTests: the lifecycle, config and secrets suite every connector runs.

A connector's contract test file subclasses it and provides a few fixtures::

    class TestPostgresContract(ConnectorContractTests):
        connector_class = PostgresConnector

        @pytest.fixture
        def config(self, postgres_url): return PostgresConfig.from_url(postgres_url)

        @pytest.fixture
        def unreachable_config(self): ...   # same secret, a port nobody listens on

        @pytest.fixture
        def invalid_config_fields(self): return {"port": -1, "pool_max": "many"}

        @pytest.fixture
        def provoke_secret_echo(self): ...  # an operation the server answers quoting it

It is typed on the :class:`~connector_core.Connector` protocol, so a composed connector
(``GraphQLConnector``, an adapter's client) runs it too: ``connector_class`` is any
callable from a config to a connector, and the ``road`` fixture points at whatever has
its events and stats. Overriding a contract test is refused at class creation unless
the override is marked ``@pytest.mark.xfail(reason=...)`` (see :class:`ContractSuite`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from connector_core import (
    Checkable,
    ConfigError,
    Connector,
    ConnectorConfig,
    ConnectorError,
    LifecycleEvent,
    NotConnectedError,
)
from connector_testing._secrets import exception_texts, record_texts, secret_leaks, shown_texts
from connector_testing._suite import ContractSuite, Observable

SecretEcho = Callable[[Any], Awaitable[Any]]


def _connected(connector: Connector) -> bool:
    # A function call, so type checkers do not carry a narrowed property across awaits.
    return connector.is_connected


def _managed(connector: Connector) -> contextlib.AbstractAsyncContextManager[Any]:
    assert isinstance(connector, contextlib.AbstractAsyncContextManager), (
        f"{type(connector).__name__} is not an async context manager: 'async with' must "
        "connect it and always disconnect it"
    )
    return connector


def _checkable(connector: Connector) -> Checkable:
    assert isinstance(connector, Checkable), f"{type(connector).__name__} has no check()"
    return connector


class ConnectorContractTests(ContractSuite):
    """The lifecycle suite. Subclasses set ``connector_class`` and provide the fixtures
    ``config`` (a working config), ``unreachable_config`` (a config whose connect fails,
    carrying the same secret), ``invalid_config_fields`` (keyword arguments that make
    the config invalid; every key must be named by the ConfigError),
    ``provoke_secret_echo`` (an async function of a connected connector that makes the
    server or driver fail while quoting the secret) and, when the config's first secret
    is not the one to look for, ``secret_value``."""

    # -- fixtures a subclass provides ---------------------------------------------------

    @pytest.fixture
    def unreachable_config(self) -> ConnectorConfig:
        raise NotImplementedError("provide an 'unreachable_config' fixture")

    @pytest.fixture
    def invalid_config_fields(self) -> dict[str, Any]:
        raise NotImplementedError("provide 'invalid_config_fields': kwargs that are invalid")

    @pytest.fixture
    def secret_value(self, config: ConnectorConfig) -> str | None:
        secrets = config.secret_values()
        return secrets[0] if secrets else None

    @pytest.fixture
    def provoke_secret_echo(self) -> SecretEcho:
        raise NotImplementedError(
            "provide 'provoke_secret_echo': an async function of a connected connector "
            "that fails while the server or driver quotes the secret (an error page that "
            "echoes the request's credentials, a server error quoting a value)"
        )

    # -- the contract -------------------------------------------------------------------

    def test_implements_connector_protocol(self, connector: Connector) -> None:
        assert isinstance(connector, Connector)
        assert isinstance(connector, Checkable)
        assert isinstance(connector.name, str)
        assert connector.name
        assert isinstance(connector.version, str)
        assert connector.version

    @pytest.mark.asyncio
    async def test_connect_and_disconnect_are_idempotent(
        self, connector: Connector, road: Observable
    ) -> None:
        events: list[LifecycleEvent] = []
        for event in (LifecycleEvent.CONNECT, LifecycleEvent.DISCONNECT):
            road.on(event, lambda info: events.append(info.event))
        await connector.disconnect()  # before connect: a no-op
        assert not _connected(connector)
        await connector.connect()
        await connector.connect()
        assert _connected(connector)
        await connector.disconnect()
        await connector.disconnect()
        assert not _connected(connector)
        assert events == [LifecycleEvent.CONNECT, LifecycleEvent.DISCONNECT]

    @pytest.mark.asyncio
    async def test_concurrent_connects_share_one_attempt(
        self, connector: Connector, road: Observable
    ) -> None:
        starts: list[LifecycleEvent] = []
        road.on(LifecycleEvent.STARTUP, lambda info: starts.append(info.event))
        try:
            await asyncio.gather(*(connector.connect() for _ in range(10)))
            assert _connected(connector)
            assert len(starts) == 1
        finally:
            await connector.disconnect()

    @pytest.mark.asyncio
    async def test_ping_before_connect_raises_not_connected(self, connector: Connector) -> None:
        with pytest.raises(NotConnectedError):
            await connector.ping()

    @pytest.mark.asyncio
    async def test_ping_returns_round_trip_seconds(self, connector: Connector) -> None:
        async with _managed(connector):
            seconds = await connector.ping()
        assert isinstance(seconds, float)
        assert 0 < seconds < 30

    @pytest.mark.asyncio
    async def test_async_with_disconnects_on_error(self, connector: Connector) -> None:
        seen_connected: list[bool] = []

        async def body() -> None:
            async with _managed(connector):
                seen_connected.append(connector.is_connected)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await body()
        assert seen_connected == [True]
        assert not _connected(connector)

    @pytest.mark.asyncio
    async def test_async_with_disconnects_on_cancellation(self, connector: Connector) -> None:
        entered = asyncio.Event()

        async def body() -> None:
            async with _managed(connector):
                entered.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(body())
        await asyncio.wait_for(entered.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not _connected(connector)

    @pytest.mark.asyncio
    async def test_check_reports_ok(self, connector: Connector) -> None:
        result = await _checkable(connector).check()
        assert result.ok, result.error
        assert result.connector == connector.name
        assert result.latency is not None
        assert result.latency > 0
        assert not _connected(connector)  # check() leaves the state as it found it

    @pytest.mark.asyncio
    async def test_check_reports_failure_without_raising(
        self, unreachable_config: ConnectorConfig
    ) -> None:
        connector = type(self).connector_class(unreachable_config)
        result = await _checkable(connector).check()
        assert not result.ok
        assert result.error
        assert result.error_code is not None

    def test_bad_config_raises_config_error_naming_every_field(
        self, config: ConnectorConfig, invalid_config_fields: dict[str, Any]
    ) -> None:
        data = {**config.model_dump(), **invalid_config_fields}
        with pytest.raises(ConfigError) as caught:
            type(config).model_validate(data)
        named = {f.split(".")[0] for f in caught.value.fields}
        assert set(invalid_config_fields) <= named, caught.value.fields

    def test_unknown_config_field_is_rejected(self, config: ConnectorConfig) -> None:
        with pytest.raises(ConfigError) as caught:
            type(config).model_validate({**config.model_dump(), "no_such_setting": 1})
        assert "no_such_setting" in caught.value.fields

    def test_secret_absent_from_repr_str_and_dump(
        self, config: ConnectorConfig, connector: Connector, secret_value: str | None
    ) -> None:
        if secret_value is None:
            pytest.fail("the config has no secret: give 'config' one so redaction is tested")
        texts = [
            repr(config),
            str(config),
            repr(connector),
            str(connector),
            str(config.model_dump()),
            config.model_dump_json(),
            config.connection_string(),
        ]
        for text in texts:
            assert secret_value not in text, text

    @pytest.mark.asyncio
    async def test_secret_absent_from_logs_and_errors(
        self,
        config: ConnectorConfig,
        unreachable_config: ConnectorConfig,
        provoke_secret_echo: SecretEcho,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """No form of a secret (plain, URL-encoded, base64, inside a Basic header's
        base64) in log records, repr, str, dumps, stats, CheckResult, or any exception of
        a raised error's whole ``__cause__``/``__context__`` chain: on a failed connect,
        and on an operation whose server or driver quoted the secret back."""
        secrets = {*config.secret_values(), *unreachable_config.secret_values()}
        if not secrets:
            pytest.fail("the configs have no secret: give them one so redaction is tested")
        caplog.set_level(logging.DEBUG)
        make = type(self).connector_class
        unreachable = make(unreachable_config)
        with pytest.raises(ConnectorError) as refused:
            await unreachable.connect()
        shown: list[Any] = [refused.value, await _checkable(unreachable).check(), unreachable]
        shown += [getattr(unreachable, "stats", None)]
        connector = make(config)
        await connector.connect()
        try:
            with pytest.raises(ConnectorError) as echoed:
                await provoke_secret_echo(connector)
            shown += [echoed.value, connector, getattr(connector, "stats", None)]
        finally:
            await connector.disconnect()
        shown += [await _checkable(connector).check(), config, unreachable_config]
        texts = shown_texts(*shown) + record_texts(caplog.records)
        leaks = secret_leaks(texts, secrets)
        assert not leaks, leaks
        # The provocation must really have made something quote the secret (now masked).
        assert "***" in "".join(exception_texts(echoed.value)), (
            "provoke_secret_echo raised an error that never held the secret: make the "
            "server or driver quote it"
        )
