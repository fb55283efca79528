"""Fixtures of the connector-websocket tests: a real websockets server on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ws_support import Backend, running_backend, self_signed


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """A backend on a free port that wants the secret in the Authorization header."""
    async with running_backend() as server:
        yield server


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """(key, certificate) of a self-signed certificate for ``localhost``."""
    return self_signed(tmp_path)
