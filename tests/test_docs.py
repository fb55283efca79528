"""The API reference (`make docs`): one page per package, built strictly from the docstrings.

The strict build is what CI checks: a cross-reference that points nowhere, a page left out
of the navigation or a docstring griffe cannot read fails it. Decision 0115.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MKDOCS")}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=240,
        check=False,
    )


def _public_modules(package: Path) -> list[str]:
    """The import package and its public subpackages (``connector_adapters.chatwoot``)."""
    (src,) = [
        p for p in (package / "src").iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    ]
    subpackages = sorted(
        f"{src.name}.{p.name}"
        for p in src.iterdir()
        if p.is_dir() and not p.name.startswith("_") and (p / "__init__.py").is_file()
    )
    return [src.name, *subpackages]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_package_has_a_reference_page(package: Path) -> None:
    name = tomllib.loads((package / "pyproject.toml").read_text())["project"]["name"]
    page = ROOT / "docs" / "api" / f"{name}.md"
    assert page.is_file(), f"{package.name} has no API page: add docs/api/{name}.md and nav"
    text = page.read_text()
    for module in _public_modules(package):
        assert f"\n::: {module}\n" in f"\n{text}\n", f"{page.name} does not render {module}"
    assert f"/packages/{package.name}#readme" in text, "the page links to the package README"
    config = (ROOT / "mkdocs.yml").read_text()
    assert f"api/{name}.md" in config
    assert f"- packages/{package.name}/src" in config


def test_the_reference_builds_strictly(tmp_path: Path) -> None:
    result = _mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    core = (tmp_path / "site" / "api" / "connector-core" / "index.html").read_text()
    # Names re-exported from the private modules are rendered, with their docstrings.
    assert 'id="connector_core.BaseConnector"' in core
    assert 'id="connector_core.ConnectorError"' in core
    adapters = (tmp_path / "site" / "api" / "connector-adapters" / "index.html").read_text()
    assert 'id="connector_adapters.chatwoot.ChatwootConfig"' in adapters


def test_a_broken_reference_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    # A page that renders a real object and links to one that does not exist.
    (docs / "index.md").write_text(
        "# Broken\n\nSee [the error][connector_core.NoSuchError].\n\n"
        "::: connector_core.ConfigError\n"
    )
    core_src = ROOT / "packages" / "connector-core" / "src"
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"site_name: broken\ndocs_dir: {docs}\nplugins:\n  - autorefs\n  - mkdocstrings:\n"
        f"      handlers:\n        python:\n          paths: [{core_src}]\n"
    )
    result = _mkdocs(config, tmp_path / "site")
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Could not find cross-reference target 'connector_core.NoSuchError'" in output
    assert "strict mode" in output
