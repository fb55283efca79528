"""RoadContractTests: every connector's operations take the same road."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from connector_core import (
    AuthenticationError,
    ConnectionFailedError,
    Connector,
    ConnectorConfig,
    ConnectorError,
    ConnectorTimeoutError,
    LifecycleEvent,
)
from connector_testing._suite import ContractSuite, Observable

Provoke = Callable[[Any], Awaitable[Any]]
Flaky = Callable[..., Awaitable[Any]]
Slow = Callable[[Any, float], Awaitable[Any]]


def _retries(road: Observable) -> list[Any]:
    seen: list[Any] = []
    road.on(LifecycleEvent.RETRY, seen.append)
    return seen


class RoadContractTests(ContractSuite):
    """What every operation of every connector does on failure: a driver's exception
    leaves as a typed ConnectorError with the driver's exception as ``__cause__``; only
    idempotent operations are retried; authentication errors never are; an operation
    that runs past its timeout is a ConnectorTimeoutError (never a lost connection);
    stats count calls, failures and retries.

    Provide ``config`` and:

    * ``provoke_driver_error``: async ``(connected) -> ...`` that makes the driver raise
      (a server error, a refused statement);
    * ``flaky_operation``: async ``(connected, *, idempotent: bool) -> ...``, an
      operation that fails once with a transient error, then would succeed (an
      idempotent one: a read; another: an insert);
    * ``rejected_config``: a config whose credentials the server refuses, and, when the
      server refuses them only on an operation (not at connect), ``rejected_operation``:
      async ``(connector) -> ...`` that connects and runs an idempotent operation;
    * ``slow_operation``: async ``(connected, timeout) -> ...``, an operation that runs
      longer than ``timeout`` seconds and is given that timeout.
    """

    @pytest.fixture
    def provoke_driver_error(self) -> Provoke:
        raise NotImplementedError("provide 'provoke_driver_error' (see RoadContractTests)")

    @pytest.fixture
    def flaky_operation(self) -> Flaky:
        raise NotImplementedError("provide 'flaky_operation' (see RoadContractTests)")

    @pytest.fixture
    def rejected_config(self) -> ConnectorConfig:
        raise NotImplementedError("provide 'rejected_config' (see RoadContractTests)")

    @pytest.fixture
    def rejected_operation(self) -> Provoke:
        async def connect(connector: Any) -> None:
            await connector.connect()

        return connect

    @pytest.fixture
    def slow_operation(self) -> Slow:
        raise NotImplementedError("provide 'slow_operation' (see RoadContractTests)")

    @pytest.mark.asyncio
    async def test_a_driver_exception_leaves_as_a_typed_error_with_its_cause(
        self, connected: Connector, provoke_driver_error: Provoke
    ) -> None:
        with pytest.raises(ConnectorError) as caught:
            await provoke_driver_error(connected)
        error = caught.value
        assert error.connector, "the error names its connector"
        cause = error.__cause__
        assert cause is not None, "the driver's exception is chained as __cause__"
        assert not isinstance(cause, ConnectorError), "the cause is the driver's own"

    @pytest.mark.asyncio
    async def test_a_transient_failure_of_an_idempotent_operation_is_retried(
        self, connected: Connector, road: Observable, flaky_operation: Flaky
    ) -> None:
        before = road.stats
        retries = _retries(road)
        await flaky_operation(connected, idempotent=True)
        after = road.stats
        assert len(retries) >= 1
        assert after.retries - before.retries == len(retries)
        assert after.failures - before.failures >= 1
        assert after.successes - before.successes >= 1
        assert after.calls > before.calls

    @pytest.mark.asyncio
    async def test_a_transient_failure_of_another_operation_is_not_retried(
        self, connected: Connector, road: Observable, flaky_operation: Flaky
    ) -> None:
        before = road.stats
        retries = _retries(road)
        with pytest.raises(ConnectorError) as caught:
            await flaky_operation(connected, idempotent=False)
        assert caught.value.transient, "the failure was transient, yet not retried"
        after = road.stats
        assert retries == []
        assert after.retries == before.retries
        assert after.failures - before.failures >= 1

    @pytest.mark.asyncio
    async def test_authentication_errors_are_never_retried(
        self,
        rejected_config: ConnectorConfig,
        rejected_operation: Provoke,
        road_of: Callable[[Connector], Observable],
    ) -> None:
        connector = type(self).connector_class(rejected_config)
        retries = _retries(road_of(connector))
        try:
            with pytest.raises(AuthenticationError) as caught:
                await rejected_operation(connector)
        finally:
            await connector.disconnect()
        assert not caught.value.transient
        assert retries == []

    @pytest.mark.asyncio
    async def test_an_operation_timeout_is_a_timeout_not_a_lost_connection(
        self, connected: Connector, slow_operation: Slow
    ) -> None:
        with pytest.raises(ConnectorError) as caught:
            await slow_operation(connected, 0.5)
        assert isinstance(caught.value, ConnectorTimeoutError), repr(caught.value)
        assert not isinstance(caught.value, ConnectionFailedError)
        assert connected.is_connected

    @pytest.mark.asyncio
    async def test_stats_count_calls(self, connected: Connector, road: Observable) -> None:
        before = road.stats
        for _ in range(3):
            await connected.ping()
        after = road.stats
        assert after.calls - before.calls == 3
        assert after.successes - before.successes == 3
        assert after.operations["ping"].calls >= 3
