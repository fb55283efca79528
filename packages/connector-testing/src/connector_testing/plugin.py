"""pytest plugin (entry point ``pytest11``): fixtures for real services.

Session fixtures ``postgres_url``, ``kafka_bootstrap``, ``mongo_url``, ``toxiproxy``
(and ``*_proxy_*`` variants routed through Toxiproxy) resolve, in order: an
environment variable (``CONNECTOR_TEST_POSTGRES_URL``, ...); the ``.services.env``
file written by ``scripts/services up``; Testcontainers when a Docker engine answers.
Without any, tests skip saying how to start the services, and fail when ``CI=true``.

Tests marked ``requires_mongodb`` need a real MongoDB (``CONNECTOR_TEST_REAL_MONGODB_URL``
or Testcontainers): FerretDB lacks transactions, change streams, ``$lookup`` and TTL
indexes. Without one they are deselected, and the reason is printed.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from connector_testing import _services as services
from connector_testing._toxiproxy import ToxiproxyClient

_RESOLVER_KEY = pytest.StashKey[services.ServiceResolver]()
_DESELECTED_KEY = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires_mongodb: needs a real MongoDB (not FerretDB): transactions, change streams, "
        "$lookup or TTL indexes",
    )
    config.addinivalue_line("markers", "integration: talks to a real service")
    config.stash[_RESOLVER_KEY] = services.ServiceResolver([config.rootpath, Path.cwd()])


def pytest_unconfigure(config: pytest.Config) -> None:
    resolver = config.stash.get(_RESOLVER_KEY, None)
    if resolver is not None:
        resolver.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needs_mongodb = [item for item in items if item.get_closest_marker("requires_mongodb")]
    if not needs_mongodb:
        return
    resolver = config.stash[_RESOLVER_KEY]
    if resolver.lookup(services.REAL_MONGO_URL) or resolver.docker():
        return
    reason = (
        "requires_mongodb: FerretDB (the MongoDB-wire server of scripts/services) lacks this "
        f"feature; set {services.REAL_MONGO_URL} or run a Docker engine to include it"
    )
    config.stash[_DESELECTED_KEY] = [f"{item.nodeid}: {reason}" for item in needs_mongodb]
    config.hook.pytest_deselected(items=needs_mongodb)
    items[:] = [item for item in items if item not in needs_mongodb]


def pytest_report_header(config: pytest.Config) -> str:
    resolver = config.stash[_RESOLVER_KEY]
    source = resolver.env_file or "none (env vars or Testcontainers)"
    return f"connector-testing: services env file: {source}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    deselected = config.stash.get(_DESELECTED_KEY, [])
    if deselected:
        terminalreporter.section("deselected, with reasons")
        for line in deselected:
            terminalreporter.write_line(line)


def _unavailable(what: str, key: str) -> None:
    message = f"{what} is not available: set {key}, or {services.HOW_TO_START}"
    if services.in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def _resolve(request: pytest.FixtureRequest, key: str, what: str, starter: Any) -> str:
    resolver = request.config.stash[_RESOLVER_KEY]
    value = resolver.resolve(key, starter)
    if value is None:
        _unavailable(what, key)
        raise AssertionError("unreachable")
    return value


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """URL of a real PostgreSQL (``postgresql://user:pass@host:port/db``)."""
    return _resolve(request, services.POSTGRES_URL, "PostgreSQL", services.start_postgres)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """``host:port`` of a real Kafka broker."""
    return _resolve(request, services.KAFKA_BOOTSTRAP, "Kafka", services.start_kafka)


@pytest.fixture(scope="session")
def mongo_url(request: pytest.FixtureRequest) -> str:
    """URL of a MongoDB-wire server (FerretDB here, MongoDB under Testcontainers)."""
    return _resolve(request, services.MONGO_URL, "a MongoDB-wire server", services.start_mongo)


@pytest.fixture(scope="session")
def real_mongodb_url(request: pytest.FixtureRequest) -> str:
    """URL of a real MongoDB, for ``requires_mongodb`` tests."""
    return _resolve(request, services.REAL_MONGO_URL, "a real MongoDB", services.start_mongo)


@pytest.fixture(scope="session")
def toxiproxy(request: pytest.FixtureRequest) -> Iterator[ToxiproxyClient]:
    """A client for Toxiproxy's API; every toxic is removed at the start and end."""
    url = _resolve(request, services.TOXIPROXY_URL, "Toxiproxy", None)
    client = ToxiproxyClient(url)
    client.reset()
    yield client
    client.reset()
    client.close()


@pytest.fixture(scope="session")
def postgres_proxy_url(request: pytest.FixtureRequest, toxiproxy: ToxiproxyClient) -> str:
    """URL of the same PostgreSQL through the Toxiproxy proxy named ``postgres``."""
    return _resolve(request, services.POSTGRES_PROXY_URL, "PostgreSQL via Toxiproxy", None)


@pytest.fixture(scope="session")
def kafka_proxy_bootstrap(request: pytest.FixtureRequest, toxiproxy: ToxiproxyClient) -> str:
    """Bootstrap of the same Kafka through the Toxiproxy proxy named ``kafka``."""
    return _resolve(request, services.KAFKA_PROXY_BOOTSTRAP, "Kafka via Toxiproxy", None)


@pytest.fixture(scope="session")
def mongo_proxy_url(request: pytest.FixtureRequest, toxiproxy: ToxiproxyClient) -> str:
    """URL of the same MongoDB-wire server through the Toxiproxy proxy named ``mongo``."""
    return _resolve(request, services.MONGO_PROXY_URL, "MongoDB via Toxiproxy", None)


# -- isolation helpers ---------------------------------------------------------------------


def unique_name(prefix: str, hint: str = "") -> str:
    """A name no other test uses: ``prefix_hint_<random>``, safe as an identifier."""
    hint = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:24]
    return "_".join(p for p in (prefix, hint, uuid.uuid4().hex[:10]) if p)


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def _admin(postgres_url: str, sql: str) -> None:
    try:
        import asyncpg  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover
        pytest.fail("postgres_database_url needs asyncpg: pip install asyncpg")
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def postgres_database_url(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for this test module (dropped afterwards); its URL."""
    name = unique_name("t", request.module.__name__.rsplit(".", 1)[-1])
    asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    yield _with_database(postgres_url, name)
    asyncio.run(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> str:
    """A Kafka topic name no other test uses."""
    return unique_name("topic", request.node.name).replace("_", "-")


@pytest.fixture
def unique_collection(request: pytest.FixtureRequest) -> str:
    """A MongoDB collection name no other test uses."""
    return unique_name("c", request.node.name)


@pytest.fixture
def unique_schema(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL schema name no other test uses (the test creates and drops it)."""
    return unique_name("s", request.node.name)
