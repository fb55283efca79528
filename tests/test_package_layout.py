"""The conventions every package keeps: layout, docs, public API, the dependency rule."""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
CONNECTORS = {
    "connector_http",
    "connector_postgres",
    "connector_mongo",
    "connector_kafka",
    "connector_websocket",
    "connector_file",
}


def _project(package: Path) -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    return data


def _import_name(package: Path) -> str:
    (src,) = [p for p in (package / "src").iterdir() if p.is_dir() and not p.name.endswith("info")]
    return src.name


def _imported_modules(package: Path) -> set[str]:
    found: set[str] = set()
    for path in (package / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_layout_and_docs(package: Path) -> None:
    project = _project(package)
    assert str(project["name"]).startswith("connector-")
    assert project["version"], "each package has its own version"
    name = _import_name(package)
    assert (package / "src" / name / "py.typed").is_file()
    assert (package / "CHANGELOG.md").is_file()
    assert (package / "tests").is_dir()
    readme = (package / "README.md").read_text().lower()
    for section in ("usage", "configuration", "errors", "troubleshooting"):
        assert f"## {section}" in readme, f"{package.name}/README.md lacks a '{section}' section"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_public_api_is_listed_and_importable(package: Path) -> None:
    module = importlib.import_module(_import_name(package))
    exported = getattr(module, "__all__", None)
    assert exported, f"{module.__name__} must list its public names in __all__"
    for name in exported:
        assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name!r}"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_dependency_rule(package: Path) -> None:
    name = _import_name(package)
    imported = _imported_modules(package)
    if name != "connector_testing":
        assert not imported & {"pytest", "connector_testing"}, "runtime code imports test tools"
    if name == "connector_core":
        assert not {m for m in imported if m.startswith("connector_")} - {"connector_core"}
    if name in CONNECTORS:
        assert not (imported & CONNECTORS) - {name}, "a connector imports another connector"


REPOSITORY = "https://github.com/connectors-dev/connectors"  # to be confirmed: decision 0117


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_licence_and_project_urls(package: Path) -> None:
    project = _project(package)
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"], "the distribution ships the LICENSE"
    licence = package / "LICENSE"
    assert licence.read_bytes() == (ROOT / "LICENSE").read_bytes(), f"{licence} is the root's"
    assert project["urls"] == {
        "Homepage": REPOSITORY,
        "Documentation": f"{REPOSITORY}/tree/main/packages/{package.name}#readme",
        "Repository": REPOSITORY,
        "Issues": f"{REPOSITORY}/issues",
        "Changelog": f"{REPOSITORY}/blob/main/packages/{package.name}/CHANGELOG.md",
    }
