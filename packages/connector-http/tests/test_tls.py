"""TLS against a real HTTPS uvicorn server: verification on by default, a CA bundle,
and a client certificate (mTLS)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connector_core import ConnectionFailedError
from connector_http import HttpConfig, HttpConnector

pytestmark = pytest.mark.integration


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool, ip: bool = False
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: Any) -> tuple[str, str]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test-ca", ca_key, "test-ca", ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    ca_crt, _ = _write(folder / "ca", ca, ca_key)
    srv_crt, srv_key = _write(
        folder / "server",
        _cert("127.0.0.1", server_key, "test-ca", ca_key, ca=False, ip=True),
        server_key,
    )
    cli_crt, cli_key = _write(
        folder / "client", _cert("client", client_key, "test-ca", ca_key, ca=False), client_key
    )
    return {"ca": ca_crt, "server_crt": srv_crt, "server_key": srv_key,
            "client_crt": cli_crt, "client_key": cli_key}  # fmt: skip


@pytest.fixture(scope="module")
def mtls_server(pki: dict[str, str], serve_app: Any) -> Iterator[str]:
    server = serve_app(
        ssl_certfile=pki["server_crt"],
        ssl_keyfile=pki["server_key"],
        ssl_ca_certs=pki["ca"],
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    server.start()
    yield f"https://127.0.0.1:{server.port}"
    server.stop()


def _config(url: str, **tls: Any) -> HttpConfig:
    return HttpConfig(
        base_url=url, health_path="/health", tls=tls, trust_env=False, retry={"max_attempts": 1}
    )


async def test_verification_is_on_by_default(mtls_server: str) -> None:
    with pytest.raises(ConnectionFailedError) as caught:
        await HttpConnector(_config(mtls_server)).connect()
    assert "tls.ca_bundle" in str(caught.value)
    assert not caught.value.transient


async def test_ca_bundle_and_client_certificate(mtls_server: str, pki: dict[str, str]) -> None:
    config = _config(
        mtls_server, ca_bundle=pki["ca"], client_cert=pki["client_crt"],
        client_key=pki["client_key"],
    )  # fmt: skip
    async with HttpConnector(config) as http:
        assert (await http.get("/health")).json() == {"ok": True}


async def test_server_requiring_a_client_certificate_refuses_without_one(
    mtls_server: str, pki: dict[str, str]
) -> None:
    with pytest.raises(ConnectionFailedError):
        async with HttpConnector(_config(mtls_server, ca_bundle=pki["ca"])) as http:
            await http.get("/health")
