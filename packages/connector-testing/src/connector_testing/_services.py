"""Where the real services for integration tests are: env vars, the env file written by
``scripts/services up``, or Testcontainers when a Docker engine answers."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ENV_FILE_NAME = ".services.env"
ENV_FILE_VAR = "CONNECTOR_SERVICES_ENV"

POSTGRES_URL = "CONNECTOR_TEST_POSTGRES_URL"
POSTGRES_PROXY_URL = "CONNECTOR_TEST_POSTGRES_PROXY_URL"
KAFKA_BOOTSTRAP = "CONNECTOR_TEST_KAFKA_BOOTSTRAP"
KAFKA_PROXY_BOOTSTRAP = "CONNECTOR_TEST_KAFKA_PROXY_BOOTSTRAP"
MONGO_URL = "CONNECTOR_TEST_MONGO_URL"
MONGO_PROXY_URL = "CONNECTOR_TEST_MONGO_PROXY_URL"
REAL_MONGO_URL = "CONNECTOR_TEST_REAL_MONGODB_URL"
TOXIPROXY_URL = "CONNECTOR_TEST_TOXIPROXY_URL"

HOW_TO_START = (
    "start the services with `make services` (or `scripts/services up`), point "
    "CONNECTOR_TEST_* variables at your own servers, or run a Docker engine for "
    "Testcontainers"
)


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

    def docker(self) -> bool:
        if self._docker is None:
            self._docker = docker_available()
        return self._docker

    def resolve(self, key: str, start_container: Callable[[ExitStack], str] | None) -> str | None:
        value = self.lookup(key)
        if value:
            return value
        if key in self._started:
            return self._started[key]
        if start_container is not None and self.docker():
            self._started[key] = start_container(self._containers)
            return self._started[key]
        return None


def _tc_module(name: str) -> Any:
    """Import a Testcontainers module (``testcontainers.community.X`` in newer releases)."""
    import importlib

    for module in (f"testcontainers.community.{name}", f"testcontainers.{name}"):
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise ImportError(
        f"Testcontainers' {name} module is missing: pip install 'connector-testing[docker]'"
    )


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
