"""Where the real services for integration tests are: env vars, the env file written by
``scripts/services up``, or Testcontainers when a Docker engine answers."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from connector_testing._toxiproxy import ToxiproxyClient

ENV_FILE_NAME = ".services.env"
ENV_FILE_VAR = "CONNECTOR_SERVICES_ENV"

POSTGRES_URL = "CONNECTOR_TEST_POSTGRES_URL"
POSTGRES_PROXY_URL = "CONNECTOR_TEST_POSTGRES_PROXY_URL"
KAFKA_BOOTSTRAP = "CONNECTOR_TEST_KAFKA_BOOTSTRAP"
KAFKA_PROXY_BOOTSTRAP = "CONNECTOR_TEST_KAFKA_PROXY_BOOTSTRAP"
KAFKA_SASL_URL = "CONNECTOR_TEST_KAFKA_SASL_URL"
MONGO_URL = "CONNECTOR_TEST_MONGO_URL"
MONGO_PROXY_URL = "CONNECTOR_TEST_MONGO_PROXY_URL"
MONGO_AUTH_URL = "CONNECTOR_TEST_MONGO_AUTH_URL"
REAL_MONGO_URL = "CONNECTOR_TEST_REAL_MONGODB_URL"
TOXIPROXY_URL = "CONNECTOR_TEST_TOXIPROXY_URL"

HOW_TO_START = (
    "start the services with `make services` (or `scripts/services up`), point "
    "CONNECTOR_TEST_* variables at your own servers, or run a Docker engine for "
    "Testcontainers"
)
DOCKER_EXTRA_HINT = "pip install 'connector-testing[docker]'"
TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"

Source = Literal["env", "file", "container"]


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a KEY=VALUE file (blank lines and ``#`` comments ignored)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def find_env_file(start: Iterable[Path]) -> Path | None:
    """The env file named by ``CONNECTOR_SERVICES_ENV``, or the nearest ``.services.env``
    in or above the given folders."""
    explicit = os.environ.get(ENV_FILE_VAR)
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    for folder in start:
        for candidate in (folder, *folder.parents):
            path = candidate / ENV_FILE_NAME
            if path.is_file():
                return path
    return None


def docker_available() -> bool:
    """Whether a Docker engine answers (the client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],  # noqa: S607
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


class ServiceResolver:
    """Resolves service addresses once per test session, in the documented order."""

    def __init__(self, search_from: Iterable[Path]) -> None:
        env_file = find_env_file(search_from)
        self.env_file = env_file
        self._file_values = read_env_file(env_file) if env_file else {}
        self._containers = ExitStack()
        self._docker: bool | None = None
        self._started: dict[str, str] = {}

    def close(self) -> None:
        self._containers.close()

    def lookup(self, key: str) -> str | None:
        """An explicit environment variable first, then the env file."""
        return os.environ.get(key) or self._file_values.get(key) or None

    def source(self, key: str) -> Source | None:
        """Where ``key``'s value comes (or came) from: ``env``, ``file``, ``container``."""
        if os.environ.get(key):
            return "env"
        if self._file_values.get(key):
            return "file"
        if key in self._started:
            return "container"
        return None

    def docker(self) -> bool:
        if self._docker is None:
            self._docker = docker_available()
        return self._docker

    def resolve(self, key: str, start_container: Callable[[ExitStack], str] | None) -> str | None:
        """The value of ``key``: env var, env file, or a container started (once per
        session) by ``start_container`` when a Docker engine answers; else ``None``.

        Raises ``ImportError`` (with the install hint) when Docker answers but
        Testcontainers is not installed.
        """
        value = self.lookup(key)
        if value:
            return value
        if key in self._started:
            return self._started[key]
        if start_container is not None and self.docker():
            self._started[key] = start_container(self._containers)
            return self._started[key]
        return None


def _tc_import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"Testcontainers is not installed (cannot import {module}); to run the services "
            f"in containers on the Docker engine that answers: {DOCKER_EXTRA_HINT}"
        ) from exc


def _tc_module(name: str) -> Any:
    """Import a Testcontainers module (``testcontainers.community.X`` in 4.15+, with the
    older ``testcontainers.X`` as a fallback).

    Raises ``ImportError`` whose message says ``pip install 'connector-testing[docker]'``.
    """
    try:
        return importlib.import_module(f"testcontainers.community.{name}")
    except ImportError:
        pass
    return _tc_import(f"testcontainers.{name}")


def start_postgres(stack: ExitStack) -> str:
    container = stack.enter_context(
        _tc_module("postgres").PostgresContainer(
            "postgres:15",
            username="connector",
            password="connector",
            dbname="connector_test",
            driver=None,
        )
    )
    url: str = container.get_connection_url()
    return url.replace("postgresql+psycopg2://", "postgresql://")


def start_kafka(stack: ExitStack) -> str:
    container = stack.enter_context(
        _tc_module("kafka").KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft()
    )
    bootstrap: str = container.get_bootstrap_server()
    return bootstrap


def start_mongo(stack: ExitStack) -> str:
    container = stack.enter_context(_tc_module("mongodb").MongoDbContainer("mongo:7"))
    url: str = container.get_connection_url()
    return url


# -- Toxiproxy in a container, and proxies created on demand ----------------------------------

# Container ports for proxies when Toxiproxy runs on a bridge network (not Linux).
_BRIDGE_PROXY_PORTS = {"postgres": 18666, "mongo": 18667, "kafka": 18668}


@dataclass(frozen=True)
class _Bridged:
    host: str
    ports: dict[int, int]  # container port -> host port


# API URL -> how to reach proxies of a Toxiproxy container on a bridge network.
_BRIDGED: dict[str, _Bridged] = {}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_toxiproxy(url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/version", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"Toxiproxy at {url} did not answer within {timeout:.0f}s")
        time.sleep(0.2)


def start_toxiproxy(stack: ExitStack) -> str:
    """Start Toxiproxy 2.12 in a container; return its API URL.

    On Linux the container shares the host network (its proxies listen on 127.0.0.1 and
    reach services, containers' published ports included, on 127.0.0.1); elsewhere it runs
    on the bridge network with a fixed port per proxy published, reaching services through
    ``host.docker.internal``. Raises ``ImportError`` without Testcontainers.
    """
    container_class = _tc_import("testcontainers.core.container").DockerContainer
    if sys.platform.startswith("linux"):
        port = free_port()
        container = container_class(TOXIPROXY_IMAGE).with_kwargs(network_mode="host")
        container.with_command(["-host=127.0.0.1", f"-port={port}"])
        stack.enter_context(container)
        url = f"http://127.0.0.1:{port}"
    else:  # pragma: no cover - Docker Desktop
        container = container_class(TOXIPROXY_IMAGE).with_exposed_ports(
            8474, *_BRIDGE_PROXY_PORTS.values()
        )
        stack.enter_context(container)
        host = container.get_container_host_ip()
        url = f"http://{host}:{container.get_exposed_port(8474)}"
        _BRIDGED[url] = _Bridged(
            host,
            {p: int(container.get_exposed_port(p)) for p in _BRIDGE_PROXY_PORTS.values()},
        )
    _wait_for_toxiproxy(url)
    return url


def _split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def ensure_proxy(client: ToxiproxyClient, name: str, upstream: tuple[str, int]) -> tuple[str, int]:
    """Make the proxy ``name`` forward to ``upstream`` (host, port), creating or replacing
    it unless it already does; return the (host, port) a client here connects to.

    Raises ``ToxiproxyError`` when Toxiproxy refuses.
    """
    bridged = _BRIDGED.get(client.url)
    host, port = upstream
    if bridged is not None and host in ("127.0.0.1", "localhost", "::1"):  # pragma: no cover
        host = "host.docker.internal"
    target = f"{host}:{port}"
    existing = client.proxies().get(name)
    if existing is None or existing.get("upstream") != target:
        if bridged is not None:  # pragma: no cover - Docker Desktop
            listen = f"0.0.0.0:{_BRIDGE_PROXY_PORTS[name]}"
        else:
            listen = f"127.0.0.1:{free_port()}"
        existing = client.create_proxy(name, listen, target)
    elif not existing.get("enabled", True):
        client.set_enabled(name, True)
    listen_host, listen_port = _split_host_port(str(existing["listen"]))
    if bridged is not None:  # pragma: no cover - Docker Desktop
        return bridged.host, bridged.ports[listen_port]
    if listen_host in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard listen address
        listen_host = "127.0.0.1"
    return listen_host, listen_port
