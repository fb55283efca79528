"""Fixtures shared by the connector-file tests: a root directory per test and a
connected connector on it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from connector_file import FileConfig, FileConnector


@pytest.fixture
def root(tmp_path: Path) -> Path:
    directory = tmp_path / "root"
    directory.mkdir()
    return directory


@pytest.fixture
async def files(root: Path) -> AsyncIterator[FileConnector]:
    """A connected connector on ``root`` with the default settings."""
    async with FileConnector(FileConfig(root=root)) as connector:
        yield connector
