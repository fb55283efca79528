"""Installed without extras, the integrations say which extra they need."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from adapters_chatwoot_fake import REPO_ROOT

pytestmark = pytest.mark.integration


def _run(*args: str | Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build a clean virtual environment")
    venv = tmp_path_factory.mktemp("bare") / "venv"
    made = _run(uv, "venv", "--python", f"{sys.version_info.major}.{sys.version_info.minor}", venv)
    assert made.returncode == 0, made.stderr
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    installed = _run(
        uv, "pip", "install", "--python", python,
        "./packages/connector-core", "./packages/adapters",
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return python


def test_base_package_imports_without_any_connector(bare_python: Path) -> None:
    probe = _run(
        bare_python, "-c",
        "import importlib.util as u, connector_adapters as a;"
        "print(a.load_adapters.__name__, u.find_spec('connector_http'),"
        " u.find_spec('connector_postgres'))",
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["load_adapters", "None", "None"]


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("connector_adapters.chatwoot", "connector-adapters[chatwoot]"),
        ("connector_adapters.salesforce", "connector-adapters[salesforce]"),
        ("connector_adapters.postgres_state", "connector-adapters[postgres]"),
        ("connector_adapters.postgres_data", "connector-adapters[postgres]"),
    ],
)
def test_integration_without_its_extra_names_the_extra(
    bare_python: Path, module: str, extra: str
) -> None:
    result = _run(bare_python, "-c", f"import {module}")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert extra in result.stderr.strip().splitlines()[-1]


def test_load_adapters_without_the_extra_names_it(bare_python: Path) -> None:
    result = _run(
        bare_python, "-c",
        "import connector_adapters as a; a.load_adapters(environ={}).chatwoot",
    )  # fmt: skip
    assert result.returncode != 0
    assert "connector-adapters[chatwoot]" in result.stderr.strip().splitlines()[-1]


def test_load_adapters_without_the_salesforce_extra_names_it(bare_python: Path) -> None:
    result = _run(
        bare_python, "-c",
        "import connector_adapters as a; a.load_adapters(environ={}).salesforce",
    )  # fmt: skip
    assert result.returncode != 0
    assert "connector-adapters[salesforce]" in result.stderr.strip().splitlines()[-1]


def test_the_kafka_publisher_without_its_extra_names_it(bare_python: Path) -> None:
    # connector_adapters imports without connector-kafka; making a publisher needs it.
    result = _run(
        bare_python, "-c",
        "import connector_adapters as a; a.KafkaEventPublisher(None, 'events')",
    )  # fmt: skip
    assert result.returncode != 0
    assert "connector-adapters[kafka]" in result.stderr.strip().splitlines()[-1]
