"""Fixtures for connector-core's unit tests. No service is needed by any test here."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Tests import their helpers from _core_support (pytest runs in importlib mode).
sys.path.insert(0, str(Path(__file__).parent))

from _core_support import FakeClock, ScriptedConfig, ScriptedConnector

_real_sleep = asyncio.sleep


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the road's ``asyncio.sleep`` delays instead of sleeping them."""
    recorded: list[float] = []

    test_thread = threading.get_ident()

    async def fake_sleep(delay: float, result: Any = None) -> Any:
        if threading.get_ident() != test_thread:
            # Another thread's event loop (a uvicorn server left running by an earlier
            # package's session fixture polls with asyncio.sleep(0.1)) keeps real time.
            return await _real_sleep(delay, result)
        recorded.append(delay)
        await _real_sleep(0)
        return result

    # connector_core._base calls asyncio.sleep through the module attribute.
    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return recorded


@pytest.fixture
def make_connector() -> Callable[..., ScriptedConnector]:
    def make(**kwargs: Any) -> ScriptedConnector:
        config_fields = kwargs.pop("config", {})
        connector = ScriptedConnector(ScriptedConfig(**config_fields), **kwargs)
        return connector

    return make
