"""The service fixtures' resolution order and their behaviour when nothing is there."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector_testing import unique_name
from connector_testing._services import ServiceResolver, read_env_file

TEST_FILE = """
def test_uses_postgres(postgres_url):
    print("URL=" + postgres_url)
"""


@pytest.fixture
def isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for key in (
        "CONNECTOR_TEST_POSTGRES_URL",
        "CONNECTOR_SERVICES_ENV",
        "CI",
    ):
        monkeypatch.delenv(key, raising=False)
    # No docker client: Testcontainers cannot be the answer in these tests.
    monkeypatch.setenv("PATH", "/nonexistent")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(TEST_FILE)
    return pytester


def test_missing_service_skips_with_how_to_start(isolated: pytest.Pytester) -> None:
    result = isolated.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*make services*"])


def test_missing_service_fails_in_ci(
    isolated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = isolated.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI=true and PostgreSQL is not available*"])


def test_env_file_is_used(isolated: pytest.Pytester) -> None:
    (isolated.path / ".services.env").write_text(
        "# written by scripts/services\nCONNECTOR_TEST_POSTGRES_URL=postgresql://from-file/db\n"
    )
    result = isolated.runpytest_inprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*URL=postgresql://from-file/db*"])


def test_env_var_beats_env_file(isolated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated.path / ".services.env").write_text(
        "CONNECTOR_TEST_POSTGRES_URL=postgresql://from-file/db\n"
    )
    monkeypatch.setenv("CONNECTOR_TEST_POSTGRES_URL", "postgresql://from-env/db")
    result = isolated.runpytest_inprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*URL=postgresql://from-env/db*"])


def test_requires_mongodb_is_deselected_with_reason(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(
        test_mongo="""
import pytest

@pytest.mark.requires_mongodb
def test_change_streams():
    raise AssertionError("must not run against FerretDB")

def test_plain():
    pass
"""
    )
    result = isolated.runpytest_inprocess("test_mongo.py", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*test_change_streams: requires_mongodb: FerretDB*"])


def test_read_env_file_parses_comments_quotes_and_export(tmp_path: Path) -> None:
    path = tmp_path / "x.env"
    path.write_text("# c\n\nexport A=1\nB='two'\nC=\"3=3\"\n")
    assert read_env_file(path) == {"A": "1", "B": "two", "C": "3=3"}


def test_resolver_finds_env_file_in_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONNECTOR_SERVICES_ENV", raising=False)
    monkeypatch.delenv("CONNECTOR_TEST_KAFKA_BOOTSTRAP", raising=False)
    (tmp_path / ".services.env").write_text("CONNECTOR_TEST_KAFKA_BOOTSTRAP=127.0.0.1:1\n")
    child = tmp_path / "a" / "b"
    child.mkdir(parents=True)
    assert ServiceResolver([child]).lookup("CONNECTOR_TEST_KAFKA_BOOTSTRAP") == "127.0.0.1:1"


def test_unique_name_is_unique_and_identifier_safe() -> None:
    names = {unique_name("t", "Test Some-Thing[param 1]") for _ in range(100)}
    assert len(names) == 100
    assert all(n.replace("_", "").isalnum() and n.islower() for n in names)


SKIP_OR_FAIL_TEST = """
from connector_testing import skip_or_fail

def test_needs_a_thing():
    skip_or_fail("the thing is missing: run `make thing`")
    raise AssertionError("skip_or_fail returned")
"""


def test_skip_or_fail_skips_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(SKIP_OR_FAIL_TEST)
    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*the thing is missing: run `make thing`*"])


def test_skip_or_fail_fails_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(SKIP_OR_FAIL_TEST)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CI=true and the thing is missing*"])
