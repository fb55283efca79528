"""The Testcontainers step of the resolution order, with a fake ``docker`` on PATH.

No Docker engine is needed: a shell script answers ``docker info`` and the ``start_*``
functions are replaced by ones that count their calls and return marker URLs.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from connector_testing import _services as services
from connector_testing._services import ServiceResolver

MARKER = "postgresql://container-marker/db"

TWO_MODULES = {
    "test_one": 'def test_one(postgres_url):\n    print("URL=" + postgres_url)\n',
    "test_two": 'def test_two(postgres_url):\n    print("URL=" + postgres_url)\n',
}


def _fake_docker(folder: Path, *, answers: bool) -> Path:
    """A ``docker`` script that logs each call; ``docker info`` prints a version or fails."""
    folder.mkdir(exist_ok=True)
    calls = folder / "docker-calls.log"
    script = folder / "docker"
    reply = 'echo "27.3.1"; exit 0' if answers else 'echo "Cannot connect" >&2; exit 1'
    script.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nif [ "$1" = info ]; then {reply}; fi\n')
    script.chmod(0o755)
    return calls


def _hide_testcontainers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``import testcontainers...`` fail, installed or not."""
    for name in [m for m in sys.modules if m.split(".")[0] == "testcontainers"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "testcontainers", None)


@pytest.fixture
def docker_pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for key in ("CONNECTOR_TEST_POSTGRES_URL", "CONNECTOR_SERVICES_ENV", "CI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PATH", str(pytester.path / "bin"))
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(**TWO_MODULES)
    return pytester


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace ``start_postgres``; each call is recorded and returns ``MARKER``."""
    calls: list[str] = []

    def fake_start(stack: ExitStack) -> str:
        calls.append("postgres")
        stack.callback(calls.append, "stopped")
        return MARKER

    monkeypatch.setattr(services, "start_postgres", fake_start)
    return calls


def test_env_var_wins_over_file_and_container(
    docker_pytester: pytest.Pytester, starts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(docker_pytester.path / "bin", answers=True)
    (docker_pytester.path / ".services.env").write_text(
        "CONNECTOR_TEST_POSTGRES_URL=postgresql://from-file/db\n"
    )
    monkeypatch.setenv("CONNECTOR_TEST_POSTGRES_URL", "postgresql://from-env/db")
    result = docker_pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("URL=postgresql://from-env/db") == 2
    assert starts == []


def test_env_file_wins_over_container(docker_pytester: pytest.Pytester, starts: list[str]) -> None:
    _fake_docker(docker_pytester.path / "bin", answers=True)
    (docker_pytester.path / ".services.env").write_text(
        "CONNECTOR_TEST_POSTGRES_URL=postgresql://from-file/db\n"
    )
    result = docker_pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("URL=postgresql://from-file/db") == 2
    assert starts == []


def test_container_when_nothing_else_started_once_and_stopped(
    docker_pytester: pytest.Pytester, starts: list[str]
) -> None:
    calls = _fake_docker(docker_pytester.path / "bin", answers=True)
    result = docker_pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count(f"URL={MARKER}") == 2
    # One container for the whole session, stopped when the session ends.
    assert starts == ["postgres", "stopped"]
    # The engine was asked once (`docker info`), not per test.
    assert calls.read_text().splitlines() == ["info --format {{.ServerVersion}}"]


def test_docker_client_without_engine_is_not_used(
    docker_pytester: pytest.Pytester, starts: list[str]
) -> None:
    _fake_docker(docker_pytester.path / "bin", answers=False)
    result = docker_pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*PostgreSQL is not available*make services*"])
    assert starts == []


@pytest.mark.parametrize("ci", [False, True])
def test_docker_without_testcontainers_gives_install_hint(
    docker_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: bool
) -> None:
    _fake_docker(docker_pytester.path / "bin", answers=True)
    _hide_testcontainers(monkeypatch)
    if ci:
        monkeypatch.setenv("CI", "true")
    result = docker_pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    if ci:
        result.assert_outcomes(errors=2)
        result.stdout.fnmatch_lines(["*CI=true and PostgreSQL is not available*"])
    else:
        result.assert_outcomes(skipped=2)
    assert "Testcontainers is not installed" in result.stdout.str()
    assert "pip install 'connector-testing[docker]'" in result.stdout.str()


def test_resolver_starts_a_container_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CONNECTOR_SERVICES_ENV", raising=False)
    monkeypatch.delenv("CONNECTOR_TEST_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setattr(services, "docker_available", lambda: True)
    resolver = ServiceResolver([tmp_path])
    started: list[int] = []

    def start(stack: ExitStack) -> str:
        started.append(1)
        return "127.0.0.1:9"

    first = resolver.resolve("CONNECTOR_TEST_KAFKA_BOOTSTRAP", start)
    second = resolver.resolve("CONNECTOR_TEST_KAFKA_BOOTSTRAP", start)
    assert first == second == "127.0.0.1:9"
    assert started == [1]
    assert resolver.source("CONNECTOR_TEST_KAFKA_BOOTSTRAP") == "container"


@pytest.mark.parametrize(
    "call",
    [
        lambda: services._tc_module("postgres"),
        lambda: services.start_postgres(ExitStack()),
        lambda: services.start_toxiproxy(ExitStack()),
    ],
    ids=["tc_module", "start_postgres", "start_toxiproxy"],
)
def test_missing_testcontainers_import_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, call: object
) -> None:
    _hide_testcontainers(monkeypatch)
    with pytest.raises(ImportError, match=r"pip install 'connector-testing\[docker\]'"):
        call()  # type: ignore[operator]
