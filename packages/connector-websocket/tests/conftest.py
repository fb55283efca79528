"""Fixtures of the connector-websocket tests: a real websockets server on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ws_support import Backend, running_backend


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """A backend on a free port that wants the secret in the Authorization header."""
    async with running_backend() as server:
        yield server
