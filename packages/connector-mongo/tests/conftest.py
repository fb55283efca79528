"""Fixtures shared by the connector-mongo tests: a connected connector, collections made
(and dropped) per test."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from mongo_support import make_config

from connector_mongo import MongoConfig, MongoConnector


@pytest.fixture
def config_for(mongo_url: str) -> Callable[..., MongoConfig]:
    """``config_for(**overrides)``: a config for the test server."""
    return lambda **overrides: make_config(mongo_url, **overrides)


@pytest.fixture
async def mongo(mongo_url: str) -> AsyncIterator[MongoConnector]:
    """A connected connector on the test server's database of the tests."""
    connector = MongoConnector(make_config(mongo_url))
    async with connector:
        yield connector


@pytest.fixture
async def collection(mongo: MongoConnector, unique_collection: str) -> AsyncIterator[str]:
    """A collection name no other test uses; dropped after the test."""
    yield unique_collection
    await mongo.database.drop_collection(unique_collection)
