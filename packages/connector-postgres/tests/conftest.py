"""Fixtures shared by the connector-postgres tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
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
