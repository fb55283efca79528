"""Cross-package tests: their helper modules (``install_support``) import by name; a
PostgreSQL connector in a schema of its own for the sync tests."""

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
async def pg_in_fresh_schema(postgres_url: str) -> AsyncIterator[Any]:
    """A connected PostgresConnector whose ``schemas`` is one new schema, dropped after."""
    from connector_postgres import PostgresConnector

    schema = f"t_{uuid.uuid4().hex[:10]}"
    async with PostgresConnector.from_url(postgres_url, schemas=(schema,)) as connector:
        await connector.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield connector
        finally:
            await connector.execute(f'DROP SCHEMA "{schema}" CASCADE')
