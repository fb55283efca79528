"""What every contract suite shares: the guard against silent overrides, the fixtures a
connector's test class gives, and the view of a connector's road (events and stats)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest

from connector_core import Connector, ConnectorConfig, LifecycleEvent, StatsSnapshot


@runtime_checkable
class Observable(Protocol):
    """What the suites read of a connector's road: lifecycle events and stats
    (``BaseConnector`` has both; a composed connector points at the one it holds)."""

    def on(self, event: LifecycleEvent, callback: Callable[[Any], Any]) -> Callable[[], None]: ...

    @property
    def stats(self) -> StatsSnapshot: ...


def _has_xfail_with_reason(func: Any) -> bool:
    for mark in getattr(func, "pytestmark", []):
        if mark.name == "xfail" and (mark.kwargs.get("reason") or len(mark.args) > 1):
            return True
    return False


def _is_shipped_suite(cls: type) -> bool:
    # The suites of this package (a connector's own test classes may be subclassed too,
    # and their tests overridden freely).
    return issubclass(cls, ContractSuite) and cls.__module__.startswith("connector_testing.")


class ContractSuite:
    """Base of the contract suites. A test class that subclasses suites may add tests
    and fixtures, but overriding a suite's test is refused at class creation unless the
    override is marked ``@pytest.mark.xfail(reason=...)``: a connector may be known not
    to meet a point, never silently.

    Fixtures every suite uses (a connector's test class provides the first):

    * ``config``: a working config (holding a secret, for the secrets tests);
    * ``connector``: a new, unconnected connector for ``config`` (by default
      ``connector_class(config)``; ``connector_class`` is any callable that takes a
      config and returns a :class:`~connector_core.Connector`);
    * ``connected``: ``connector``, connected for the test and disconnected after;
    * ``road``: what has the connector's events and stats (:class:`Observable`): by
      default the connector itself; ``road_of`` (a function of a connector) says where
      to find it for a composed connector.
    """

    connector_class: ClassVar[Callable[[Any], Connector]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for suite in cls.__mro__[1:]:
            if not _is_shipped_suite(suite):
                continue
            # Looked up through the MRO, so an override in a mixin is caught too.
            for name, original in vars(suite).items():
                if not name.startswith("test_"):
                    continue
                value = getattr(cls, name, None)
                if value is not original and not _has_xfail_with_reason(value):
                    raise TypeError(
                        f"{cls.__name__}.{name} overrides a contract test of "
                        f"{suite.__name__}; mark the override "
                        "@pytest.mark.xfail(reason='why this connector does not meet it') "
                        "instead of replacing it silently"
                    )

    @pytest.fixture
    def config(self) -> ConnectorConfig:
        raise NotImplementedError("provide a 'config' fixture with a working config")

    @pytest.fixture
    def connector(self, config: ConnectorConfig) -> Connector:
        return type(self).connector_class(config)

    @pytest.fixture
    async def connected(self, connector: Connector) -> AsyncIterator[Connector]:
        await connector.connect()
        try:
            yield connector
        finally:
            await connector.disconnect()

    @pytest.fixture
    def road_of(self) -> Callable[[Connector], Observable]:
        """How to find a connector's road (events and stats): the connector itself by
        default; a composed connector's test class returns the one it holds."""

        def itself(connector: Connector) -> Observable:
            if not isinstance(connector, Observable):
                pytest.fail(
                    f"{type(connector).__name__} has no on() and stats: give a 'road_of' "
                    "fixture returning the connector that has them (the one it holds)"
                )
            return connector

        return itself

    @pytest.fixture
    def road(self, connector: Connector, road_of: Callable[[Connector], Observable]) -> Observable:
        return road_of(connector)
