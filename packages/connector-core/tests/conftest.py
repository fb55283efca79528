"""Fixtures for connector-core's unit tests. No service is needed by any test here."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Tests import their helpers from _core_support (pytest runs in importlib mode).
sys.path.insert(0, str(Path(__file__).parent))

from _core_support import FakeClock, ScriptedConfig, ScriptedConnector


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps(clock: FakeClock) -> list[float]:
    """The delays slept by connectors built with the test's clock (``make_connector``
    injects it): recorded, and advanced on the fake clock instead of waited."""
    return clock.sleeps


@pytest.fixture
def make_connector(clock: FakeClock) -> Callable[..., ScriptedConnector]:
    def make(**kwargs: Any) -> ScriptedConnector:
        config_fields = kwargs.pop("config", {})
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("sleep", clock.sleep)
        return ScriptedConnector(ScriptedConfig(**config_fields), **kwargs)

    return make
