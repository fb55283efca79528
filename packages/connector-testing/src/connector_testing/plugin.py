"""pytest plugin (entry point ``pytest11``): fixtures for real services.

Session fixtures ``postgres_url``, ``kafka_bootstrap``, ``kafka_sasl_url``, ``mongo_url``,
``mongo_auth_url``, ``toxiproxy``
(and ``*_proxy_*`` variants routed through Toxiproxy) resolve, in order: an
environment variable (``CONNECTOR_TEST_POSTGRES_URL``, ...); the ``.services.env``
file written by ``scripts/services up``; Testcontainers when a Docker engine answers
(Toxiproxy as ``ghcr.io/shopify/toxiproxy:2.12.0``). ``postgres_proxy_url`` and
``mongo_proxy_url`` come from their variable (or the env file, when the service and
Toxiproxy came from it too), else a proxy is created in front of the direct service;
``kafka_proxy_bootstrap`` needs its variable or the env file (the broker must advertise
the proxy). Without any, tests skip saying how to start the services, and fail when
``CI=true``.

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
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

from connector_core import redact_url
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


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the running test saying ``reason`` (what is missing and how to get it), or
    fail it when ``CI=true``: in CI a missing service is a failure, never a silent skip."""
    if services.in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _unavailable(what: str, key: str, detail: str = "") -> NoReturn:
    skip_or_fail(f"{what} is not available: {detail or f'set {key}, or {services.HOW_TO_START}'}")


def _resolve(request: pytest.FixtureRequest, key: str, what: str, starter: Any) -> str:
    resolver = request.config.stash[_RESOLVER_KEY]
    missing_testcontainers = ""
    try:
        value = resolver.resolve(key, starter)
    except ImportError as exc:  # Docker answers, Testcontainers is missing
        value, missing_testcontainers = None, str(exc)
    if missing_testcontainers:
        _unavailable(what, key, f"set {key}, run `make services`, or {missing_testcontainers}")
    if value is None:
        _unavailable(what, key)
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
def kafka_sasl_url(request: pytest.FixtureRequest) -> str:
    """``kafka://user:password@host:port/?security_protocol=SASL_PLAINTEXT&...`` of a
    Kafka listener that authenticates with SASL (PLAIN, SCRAM-SHA-256 and -512 for that
    user): ``CONNECTOR_TEST_KAFKA_SASL_URL`` or the env file (``scripts/services`` runs
    one). A container would need the same listener set up, so there is no Testcontainers
    fallback: without it the test skips saying so (and fails when ``CI=true``)."""
    resolver = request.config.stash[_RESOLVER_KEY]
    value = resolver.lookup(services.KAFKA_SASL_URL)
    if value is None:
        _unavailable(
            "Kafka with SASL",
            services.KAFKA_SASL_URL,
            f"set {services.KAFKA_SASL_URL} to a kafka:// URL with the user and password of "
            "a SASL listener, or start the services with `make services` (it runs one)",
        )
    return value


@pytest.fixture(scope="session")
def mongo_url(request: pytest.FixtureRequest) -> str:
    """URL of a MongoDB-wire server (FerretDB here, MongoDB under Testcontainers)."""
    return _resolve(request, services.MONGO_URL, "a MongoDB-wire server", services.start_mongo)


@pytest.fixture(scope="session")
def mongo_auth_url(request: pytest.FixtureRequest) -> str:
    """``mongodb://user:password@host:port/db?authSource=db`` of a MongoDB-wire server that
    requires a login (SCRAM), for tests whose config must hold a working password:
    ``CONNECTOR_TEST_MONGO_AUTH_URL`` or the env file (``scripts/services`` runs a second
    FerretDB with authentication on). No Testcontainers fallback: without it the test
    skips saying so (and fails when ``CI=true``)."""
    resolver = request.config.stash[_RESOLVER_KEY]
    value = resolver.lookup(services.MONGO_AUTH_URL)
    if value is None:
        _unavailable(
            "a MongoDB-wire server with authentication",
            services.MONGO_AUTH_URL,
            f"set {services.MONGO_AUTH_URL} to a mongodb:// URL with the user and password of "
            "a server that requires a login, or start the services with `make services` "
            "(it runs one)",
        )
    return value


@pytest.fixture(scope="session")
def real_mongodb_url(request: pytest.FixtureRequest) -> str:
    """URL of a real MongoDB, for ``requires_mongodb`` tests."""
    return _resolve(request, services.REAL_MONGO_URL, "a real MongoDB", services.start_mongo)


@pytest.fixture(scope="session")
def toxiproxy(request: pytest.FixtureRequest) -> Iterator[ToxiproxyClient]:
    """A client for Toxiproxy's API (env var, env file, or Toxiproxy 2.12 in a container);
    every toxic is removed and every proxy enabled at the start and end."""
    url = _resolve(request, services.TOXIPROXY_URL, "Toxiproxy", services.start_toxiproxy)
    client = ToxiproxyClient(url)
    client.reset()
    yield client
    client.reset()
    client.close()


def _with_host_port(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    netloc = f"{userinfo}@{address}" if userinfo else address
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _proxy_from_settings(resolver: services.ServiceResolver, key: str, direct_key: str) -> bool:
    """A proxy address from the env file is only right when the service and Toxiproxy came
    from that file too (``scripts/services`` wrote all three); an env var always wins."""
    source = resolver.source(key)
    return source == "env" or (
        source == "file"
        and resolver.source(direct_key) == "file"
        and resolver.source(services.TOXIPROXY_URL) == "file"
    )


def _proxied_url(
    request: pytest.FixtureRequest,
    toxiproxy: ToxiproxyClient,
    *,
    key: str,
    direct_key: str,
    direct_fixture: str,
    proxy: str,
    default_port: int,
) -> str:
    resolver = request.config.stash[_RESOLVER_KEY]
    if _proxy_from_settings(resolver, key, direct_key):
        value = resolver.lookup(key)
        assert value is not None
        return value
    direct: str = request.getfixturevalue(direct_fixture)
    parts = urlsplit(direct)
    if "," in parts.netloc or not parts.hostname:
        pytest.fail(
            f"cannot put a Toxiproxy proxy in front of {redact_url(direct)}: one host:port "
            f"is needed; set {key}",
            pytrace=False,
        )
    host, port = services.ensure_proxy(
        toxiproxy, proxy, (parts.hostname, parts.port or default_port)
    )
    return _with_host_port(direct, host, port)


@pytest.fixture(scope="session")
def postgres_proxy_url(request: pytest.FixtureRequest, toxiproxy: ToxiproxyClient) -> str:
    """URL of the same PostgreSQL as ``postgres_url`` through the Toxiproxy proxy named
    ``postgres``: ``CONNECTOR_TEST_POSTGRES_PROXY_URL``, the env file's (when PostgreSQL and
    Toxiproxy came from it too), or a proxy created (idempotently) in front of
    ``postgres_url`` on a free 127.0.0.1 port."""
    return _proxied_url(
        request,
        toxiproxy,
        key=services.POSTGRES_PROXY_URL,
        direct_key=services.POSTGRES_URL,
        direct_fixture="postgres_url",
        proxy="postgres",
        default_port=5432,
    )


@pytest.fixture(scope="session")
def mongo_proxy_url(request: pytest.FixtureRequest, toxiproxy: ToxiproxyClient) -> str:
    """URL of the same MongoDB-wire server as ``mongo_url`` through the Toxiproxy proxy
    named ``mongo`` (resolved like ``postgres_proxy_url``)."""
    return _proxied_url(
        request,
        toxiproxy,
        key=services.MONGO_PROXY_URL,
        direct_key=services.MONGO_URL,
        direct_fixture="mongo_url",
        proxy="mongo",
        default_port=27017,
    )


@pytest.fixture(scope="session")
def kafka_proxy_bootstrap(request: pytest.FixtureRequest, toxiproxy: ToxiproxyClient) -> str:
    """Bootstrap of the same Kafka through the Toxiproxy proxy named ``kafka``.

    Only from ``CONNECTOR_TEST_KAFKA_PROXY_BOOTSTRAP`` or the env file: a Kafka client
    follows the addresses the broker advertises, so the broker itself must advertise the
    proxy's address on a listener of its own (``scripts/services`` sets that up); a proxy
    created on the fly in front of any broker would be bypassed after bootstrap.
    """
    resolver = request.config.stash[_RESOLVER_KEY]
    if _proxy_from_settings(resolver, services.KAFKA_PROXY_BOOTSTRAP, services.KAFKA_BOOTSTRAP):
        value = resolver.lookup(services.KAFKA_PROXY_BOOTSTRAP)
        assert value is not None
        return value
    _unavailable(
        "Kafka via Toxiproxy",
        services.KAFKA_PROXY_BOOTSTRAP,
        "the broker must advertise the proxy's address, which a proxy created on the fly "
        "cannot arrange; start the services with `make services` (it writes "
        f"{services.KAFKA_PROXY_BOOTSTRAP} to .services.env) or set "
        f"{services.KAFKA_PROXY_BOOTSTRAP} to a bootstrap whose broker advertises a "
        "listener through the Toxiproxy proxy named `kafka`",
    )
    raise AssertionError("unreachable")


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
