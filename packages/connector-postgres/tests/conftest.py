"""Fixtures shared by the connector-postgres tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from connector_postgres import PostgresConfig, PostgresConnector


def make_config(url: str, **overrides: Any) -> PostgresConfig:
    """A config for the test server with short timeouts and quick retries."""
    fields: dict[str, Any] = {
        "connect_timeout": 5.0,
        "timeout": 60.0,
        "retry": {"max_attempts": 4, "initial_delay": 0.05, "max_delay": 0.5},
        "pool_min": 1,
        "pool_max": 4,
    }
    fields.update(overrides)
    return PostgresConfig.from_url(url, **fields)


@pytest.fixture
async def pg(postgres_database_url: str) -> AsyncIterator[PostgresConnector]:
    """A connected connector on this module's fresh database."""
    connector = PostgresConnector(make_config(postgres_database_url))
    async with connector:
        yield connector


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def secret_role_url(postgres_url: str) -> Iterator[str]:
    """URL of a login role with a long, distinctive password (the services' own password,
    "connector", is also the user name, so it cannot show that a secret stays hidden)."""
    role = f"secret_role_{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    asyncio.run(_admin(postgres_url, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
    parts = urlsplit(postgres_url)
    netloc = f"{role}:{password}@{parts.hostname}:{parts.port}"
    yield urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    asyncio.run(
        _admin(
            postgres_url,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'",
            f"DROP ROLE IF EXISTS {role}",
        )
    )


def _terminate_unnoticed(url: str, app: str) -> int:
    """Terminate every backend of ``application_name=app`` and wait until they are gone,
    from another thread while this thread (and so the test's event loop) is blocked: the
    pool cannot notice the closed sockets before its next call uses one of them. Returns
    how many backends it terminated."""
    killed: list[int] = []

    async def kill() -> None:
        connection = await asyncpg.connect(url)
        try:
            pids = [
                r[0]
                for r in await connection.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app
                )
            ]
            await connection.fetch("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) p", pids)
            for _ in range(200):
                alive = await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
                )
                if alive == 0:
                    break
                await asyncio.sleep(0.02)
            killed.extend(pids)
        finally:
            await connection.close()

    thread = threading.Thread(target=lambda: asyncio.run(kill()))
    thread.start()
    thread.join()  # blocks the event loop on purpose
    return len(killed)


@pytest.fixture
def terminate_unnoticed() -> Callable[[str, str], int]:
    """``terminate_unnoticed(url, application_name)``: kill the connector's pooled
    backends so that its next call meets a dead connection (see ``_terminate_unnoticed``)."""
    return _terminate_unnoticed


@pytest.fixture
def config_for() -> Any:
    """``config_for(url, **overrides)``: a test config (see ``make_config``)."""
    return make_config


@pytest.fixture
def client_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key, as PEM files."""
    return _self_signed(tmp_path)


@pytest.fixture(scope="module")
def module_client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """As ``client_cert``, once per module (for property tests, which run many examples
    in one test function)."""
    return _self_signed(tmp_path_factory.mktemp("pem"))


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connector")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "client.crt", folder / "client.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
