"""ConnectorContractTests: the standard tests every connector package runs.

A connector's contract test file subclasses this class and provides a few fixtures::

    class TestPostgresContract(ConnectorContractTests):
        connector_class = PostgresConnector

        @pytest.fixture
        def config(self, postgres_url): return PostgresConfig.from_url(postgres_url)

        @pytest.fixture
        def unreachable_config(self): ...   # same secret, a port nobody listens on

        @pytest.fixture
        def invalid_config_fields(self): return {"port": -1, "pool_max": "many"}

Overriding a contract test is refused at class creation, unless the override is
marked ``@pytest.mark.xfail(reason=...)``: a connector may be known not to meet a
point, but never silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest

from connector_core import (
    BaseConnector,
    Checkable,
    ConfigError,
    Connector,
    ConnectorConfig,
    ConnectorError,
    LifecycleEvent,
    NotConnectedError,
)
from connector_testing._secrets import exception_texts, record_texts, secret_leaks, shown_texts

SecretEcho = Callable[[Any], Awaitable[Any]]


def _connected(connector: BaseConnector[Any]) -> bool:
    # A function call, so type checkers do not carry a narrowed property across awaits.
    return connector.is_connected


def _has_xfail_with_reason(func: Any) -> bool:
    for mark in getattr(func, "pytestmark", []):
        if mark.name == "xfail" and (mark.kwargs.get("reason") or len(mark.args) > 1):
            return True
    return False


class ConnectorContractTests:
    """The contract suite. Subclasses set ``connector_class`` and provide the fixtures
    ``config`` (a working config), ``unreachable_config`` (a config whose connect fails,
    carrying the same secret) and ``invalid_config_fields`` (keyword arguments that make
    the config invalid; every key must be named by the ConfigError), and, when the
    config holds a secret, ``secret_value`` (the secret's plain text)."""

    connector_class: ClassVar[type[BaseConnector[Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Look the tests up through the MRO, so an override in a mixin is caught too.
        for name, original in vars(ConnectorContractTests).items():
            if not name.startswith("test_"):
                continue
            value = getattr(cls, name, None)
            if value is not original and not _has_xfail_with_reason(value):
                raise TypeError(
                    f"{cls.__name__}.{name} overrides a contract test of "
                    "ConnectorContractTests; mark the override "
                    "@pytest.mark.xfail(reason='why this connector does not meet it') "
                    "instead of replacing it silently"
                )

    # -- fixtures a subclass provides ---------------------------------------------------

    @pytest.fixture
    def config(self) -> ConnectorConfig:
        raise NotImplementedError("provide a 'config' fixture with a working config")

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

    @pytest.fixture
    def connector(self, config: ConnectorConfig) -> BaseConnector[Any]:
        return self.connector_class(config)

    # -- the contract -------------------------------------------------------------------

    def test_implements_connector_protocol(self, connector: BaseConnector[Any]) -> None:
        assert isinstance(connector, Connector)
        assert isinstance(connector, Checkable)
        assert isinstance(connector.name, str)
        assert connector.name
        assert isinstance(connector.version, str)
        assert connector.version

    @pytest.mark.asyncio
    async def test_connect_and_disconnect_are_idempotent(
        self, connector: BaseConnector[Any]
    ) -> None:
        events: list[LifecycleEvent] = []
        for event in (LifecycleEvent.CONNECT, LifecycleEvent.DISCONNECT):
            connector.on(event, lambda info: events.append(info.event))
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
        self, connector: BaseConnector[Any]
    ) -> None:
        starts: list[LifecycleEvent] = []
        connector.on(LifecycleEvent.STARTUP, lambda info: starts.append(info.event))
        try:
            await asyncio.gather(*(connector.connect() for _ in range(10)))
            assert _connected(connector)
            assert len(starts) == 1
        finally:
            await connector.disconnect()

    @pytest.mark.asyncio
    async def test_ping_before_connect_raises_not_connected(
        self, connector: BaseConnector[Any]
    ) -> None:
        with pytest.raises(NotConnectedError):
            await connector.ping()

    @pytest.mark.asyncio
    async def test_ping_returns_round_trip_seconds(self, connector: BaseConnector[Any]) -> None:
        async with connector:
            seconds = await connector.ping()
        assert isinstance(seconds, float)
        assert 0 < seconds < 30

    @pytest.mark.asyncio
    async def test_async_with_disconnects_on_error(self, connector: BaseConnector[Any]) -> None:
        seen_connected: list[bool] = []

        async def body() -> None:
            async with connector:
                seen_connected.append(connector.is_connected)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await body()
        assert seen_connected == [True]
        assert not _connected(connector)

    @pytest.mark.asyncio
    async def test_async_with_disconnects_on_cancellation(
        self, connector: BaseConnector[Any]
    ) -> None:
        entered = asyncio.Event()

        async def body() -> None:
            async with connector:
                entered.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(body())
        await asyncio.wait_for(entered.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not _connected(connector)

    @pytest.mark.asyncio
    async def test_check_reports_ok(self, connector: BaseConnector[Any]) -> None:
        result = await connector.check()
        assert result.ok, result.error
        assert result.connector == connector.name
        assert result.latency is not None
        assert result.latency > 0
        assert not _connected(connector)  # check() leaves the state as it found it

    @pytest.mark.asyncio
    async def test_check_reports_failure_without_raising(
        self, unreachable_config: ConnectorConfig
    ) -> None:
        connector = self.connector_class(unreachable_config)
        result = await connector.check()
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
        self, config: ConnectorConfig, connector: BaseConnector[Any], secret_value: str | None
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
        unreachable = self.connector_class(unreachable_config)
        with pytest.raises(ConnectorError) as refused:
            await unreachable.connect()
        shown: list[Any] = [refused.value, await unreachable.check(), unreachable]
        shown.append(unreachable.stats)
        connector = self.connector_class(config)
        async with connector:
            with pytest.raises(ConnectorError) as echoed:
                await provoke_secret_echo(connector)
            shown += [echoed.value, connector, connector.stats]
        shown += [await connector.check(), config, unreachable_config]
        texts = shown_texts(*shown) + record_texts(caplog.records)
        leaks = secret_leaks(texts, secrets)
        assert not leaks, leaks
        # The provocation must really have made something quote the secret (now masked).
        assert "***" in "".join(exception_texts(echoed.value)), (
            "provoke_secret_echo raised an error that never held the secret: make the "
            "server or driver quote it"
        )
