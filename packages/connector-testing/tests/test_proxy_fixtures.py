"""``postgres_proxy_url`` / ``mongo_proxy_url`` create their Toxiproxy proxy when no
setting names one, and ``kafka_proxy_bootstrap`` says why it cannot.

Real servers: PostgreSQL and the MongoDB-wire server from the services env, and a private
Toxiproxy (the binary ``scripts/services`` built) so that the shared proxies stay untouched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from connector_testing import ToxiproxyClient, skip_or_fail, unique_name
from connector_testing._services import ensure_proxy, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TOXIPROXY_BIN = ROOT / ".cache" / "services" / "bin" / "toxiproxy-server-2.12.0"
PROBE = ROOT / "scripts" / "services.d" / "probe.py"


@pytest.fixture(scope="module")
def private_toxiproxy() -> Iterator[str]:
    """A Toxiproxy of our own on a free port; its API URL."""
    if not TOXIPROXY_BIN.exists():
        skip_or_fail(f"{TOXIPROXY_BIN} is missing: run `make services`")
    port = free_port()
    process = subprocess.Popen(
        [str(TOXIPROXY_BIN), "-host", "127.0.0.1", "-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/version", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


async def _select_one(url: str) -> int:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        value: int = await connection.fetchval("select 1")
        return value
    finally:
        await connection.close()


async def test_ensure_proxy_creates_once_and_carries_traffic(
    postgres_url: str, private_toxiproxy: str
) -> None:
    client = ToxiproxyClient(private_toxiproxy)
    name = unique_name("pg")
    direct = urlsplit(postgres_url)
    assert direct.hostname
    assert direct.port
    try:
        host, port = ensure_proxy(client, name, (direct.hostname, direct.port))
        assert client.proxy(name)["upstream"] == f"{direct.hostname}:{direct.port}"
        # Idempotent: same upstream, same proxy and address.
        assert ensure_proxy(client, name, (direct.hostname, direct.port)) == (host, port)
        assert len(client.proxies()) == 1
        proxied = postgres_url.replace(direct.netloc.rpartition("@")[2], f"{host}:{port}")
        assert proxied != postgres_url
        assert await _select_one(proxied) == 1
        # The traffic really flows through the proxy: cut it, and connecting fails.
        with (
            client.disabled(name),
            pytest.raises((OSError, asyncpg.PostgresError, TimeoutError)),
        ):
            await _select_one(proxied)
        # A different upstream replaces the proxy.
        ensure_proxy(client, name, (direct.hostname, 1))
        assert client.proxy(name)["upstream"] == f"{direct.hostname}:1"
    finally:
        client.delete_proxy(name)
        client.close()


PROXY_TEST = """
import asyncio
import subprocess
import sys
from urllib.parse import urlsplit

import asyncpg
import pytest


def test_proxies(postgres_url, postgres_proxy_url, mongo_url, mongo_proxy_url, toxiproxy):
    print("PG=" + postgres_proxy_url)
    print("MONGO=" + mongo_proxy_url)
    pg, proxied = urlsplit(postgres_url), urlsplit(postgres_proxy_url)
    assert (proxied.username, proxied.password, proxied.path) == (pg.username, pg.password, pg.path)
    assert toxiproxy.proxy("postgres")["upstream"] == f"{pg.hostname}:{pg.port}"
    mongo = urlsplit(mongo_url)
    assert toxiproxy.proxy("mongo")["upstream"] == f"{mongo.hostname}:{mongo.port}"

    async def select_one():
        connection = await asyncpg.connect(postgres_proxy_url, timeout=5)
        try:
            return await connection.fetchval("select 1")
        finally:
            await connection.close()

    assert asyncio.run(select_one()) == 1
    with toxiproxy.disabled("postgres"):
        with pytest.raises((OSError, asyncpg.PostgresError, TimeoutError)):
            asyncio.run(select_one())
    m = urlsplit(mongo_proxy_url)
    hello = [sys.executable, PROBE, "mongo-hello", m.hostname, str(m.port)]
    assert subprocess.run(hello, check=False, timeout=30).returncode == 0


def test_kafka_proxy(kafka_proxy_bootstrap):
    raise AssertionError("must not resolve")
"""


@pytest.fixture
def proxy_pytester(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    private_toxiproxy: str,
    postgres_url: str,
    mongo_url: str,
) -> pytest.Pytester:
    for key in [k for k in os.environ if k.startswith("CONNECTOR_TEST_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("CONNECTOR_SERVICES_ENV", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no docker
    # The services come from env vars; the env file's proxy addresses (through another
    # Toxiproxy, to other servers) must then be ignored.
    monkeypatch.setenv("CONNECTOR_TEST_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("CONNECTOR_TEST_MONGO_URL", mongo_url)
    monkeypatch.setenv("CONNECTOR_TEST_TOXIPROXY_URL", private_toxiproxy)
    (pytester.path / ".services.env").write_text(
        "CONNECTOR_TEST_POSTGRES_PROXY_URL=postgresql://stale:stale@127.0.0.1:1/stale\n"
        "CONNECTOR_TEST_MONGO_PROXY_URL=mongodb://127.0.0.1:1/\n"
        "CONNECTOR_TEST_KAFKA_PROXY_BOOTSTRAP=127.0.0.1:1\n"
        "CONNECTOR_TEST_TOXIPROXY_URL=http://127.0.0.1:1\n"
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_proxies=f"PROBE = {str(PROBE)!r}\n" + PROXY_TEST)
    return pytester


def test_proxy_fixtures_create_proxies_in_front_of_the_direct_services(
    proxy_pytester: pytest.Pytester,
) -> None:
    result = proxy_pytester.runpytest_inprocess("-s", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)
    out = result.stdout.str()
    assert "stale" not in out
    assert "127.0.0.1:1/" not in out
    result.stdout.fnmatch_lines(
        [
            "*PG=postgresql://*@127.0.0.1:*/*",
            "MONGO=mongodb://127.0.0.1:*",
            "*Kafka via Toxiproxy is not available: the broker must advertise the proxy*",
        ]
    )


def test_kafka_proxy_fails_in_ci_with_the_reason(
    proxy_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = proxy_pytester.runpytest_inprocess("-k", "kafka", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI=true and Kafka via Toxiproxy is not available*advertise*"])


def test_env_file_proxy_is_used_when_everything_came_from_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, private_toxiproxy: str
) -> None:
    for key in [k for k in os.environ if k.startswith("CONNECTOR_TEST_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("CONNECTOR_SERVICES_ENV", raising=False)
    monkeypatch.delenv("CI", raising=False)
    (pytester.path / ".services.env").write_text(
        "CONNECTOR_TEST_POSTGRES_URL=postgresql://u:p@127.0.0.1:5/db\n"
        "CONNECTOR_TEST_POSTGRES_PROXY_URL=postgresql://u:p@127.0.0.1:6/db\n"
        "CONNECTOR_TEST_KAFKA_BOOTSTRAP=127.0.0.1:7\n"
        "CONNECTOR_TEST_KAFKA_PROXY_BOOTSTRAP=127.0.0.1:8\n"
        f"CONNECTOR_TEST_TOXIPROXY_URL={private_toxiproxy}\n"
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        "def test_it(postgres_proxy_url, kafka_proxy_bootstrap, toxiproxy):\n"
        "    print('PG=' + postgres_proxy_url, 'KAFKA=' + kafka_proxy_bootstrap)\n"
        '    upstreams = [p["upstream"] for p in toxiproxy.proxies().values()]\n'
        '    assert "127.0.0.1:5" not in upstreams\n'
    )
    result = pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PG=postgresql://u:p@127.0.0.1:6/db KAFKA=127.0.0.1:8"])
