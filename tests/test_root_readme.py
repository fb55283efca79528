"""The root README's install commands work as written, and its package table is complete.

Each ``bash`` block marked ``<!-- install: tested -->`` runs in a clean virtual environment
made with uv (like tests/test_install_isolation.py), command by command:

* ``git clone <the repository>`` and ``cd connectors``: this checkout is that clone;
* ``pip install ARGS``: ``uv pip install ARGS`` into the new environment, from this
  checkout (a ``git+https`` URL of the repository becomes ``git+file://`` of this
  checkout, so the ``subdirectory=`` paths are checked against its committed tree);
* ``make build``: the build command of the Makefile's ``build`` target, for the wheels the
  block installs, into a temporary ``dist/``.

Any other command fails the test, so the README cannot grow an untested step. After each
block every installed distribution of ours imports, registers its URL schemes and carries
the LICENSE and the project URLs in its metadata.
"""

from __future__ import annotations

import glob
import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from install_support import make_venv, run, uv_command

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REPOSITORY = "https://github.com/connectors-dev/connectors"
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
_MARKER = "<!-- install: tested -->"


@dataclass(frozen=True)
class Package:
    folder: Path
    name: str
    import_name: str
    schemes: frozenset[str]


def _package(folder: Path) -> Package:
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    (src,) = [p for p in (folder / "src").iterdir() if (p / "__init__.py").is_file()]
    schemes = project.get("entry-points", {}).get("connector_core.connectors", {})
    return Package(folder, project["name"], src.name, frozenset(schemes))


BY_NAME = {package.name: package for package in map(_package, PACKAGES)}


def install_blocks() -> list[tuple[int, list[list[str]]]]:
    """(line, commands as words) of each tested block; continuations joined, comments gone."""
    lines = README.read_text().splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.strip() != _MARKER:
            continue
        assert lines[index + 1].strip() == "```bash", f"README.md:{index + 1}: not a bash block"
        end = lines.index("```", index + 2)
        script = "\n".join(lines[index + 2 : end]).replace("\\\n", " ")
        commands = [shlex.split(command, comments=True) for command in script.splitlines()]
        found.append((index + 3, [words for words in commands if words]))
    return found


def _distribution(arg: str) -> str:
    """The name of the distribution a ``pip install`` argument of ours installs."""
    if " @ " in arg:
        return arg.split(" @ ")[0].strip()
    if arg.startswith("./packages/"):
        folder = ROOT / re.sub(r"\[.*\]$", "", arg)
        return _package(folder).name
    if arg.startswith("dist/"):
        return Path(arg).name.split("-")[0].replace("_", "-")
    raise AssertionError(f"pip install {arg!r}: not one of this repository's packages")


def _wheels(names: set[str], dist: Path) -> None:
    """What `make build` does (its recipe is checked), for the named packages' wheels."""
    recipe = re.search(r"^build:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has a build target"
    assert recipe.group(1) == "$(UV) build --all-packages --no-sources --out-dir dist"
    for name in sorted(names):
        run(*uv_command(), "build", "--quiet", "--no-sources", "--wheel", "--package", name,
            "--out-dir", dist, timeout=120)  # fmt: skip


def _pip_args(args: list[str], dist: Path) -> list[str]:
    local = f"git+file://{ROOT}"
    out = []
    for arg in args:
        arg = arg.replace(f"git+{REPOSITORY}.git", local)
        if arg.startswith("dist/"):
            matches = glob.glob(str(dist / arg.removeprefix("dist/")))
            assert len(matches) == 1, f"{arg}: {matches} after make build"
            arg = matches[0]
        out.append(arg)
    return out


CHECK = """
import importlib, importlib.metadata as md, json, sys
import connector_core
report = {"schemes": sorted(connector_core.available_schemes())}
for name, module in json.loads(sys.argv[1]).items():
    importlib.import_module(module)
    meta = md.metadata(name)
    report[name] = {
        "urls": dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or []),
        "license": meta.get("License-Expression"),
        "license_files": sorted(
            str(f) for f in md.files(name) or [] if f.name == "LICENSE" and "licenses" in f.parts
        ),
    }
print(json.dumps(report))
"""


@pytest.mark.parametrize(
    ("line", "commands"),
    [pytest.param(line, commands, id=f"README.md:{line}") for line, commands in install_blocks()],
)
def test_the_documented_install_works(tmp_path: Path, line: int, commands: list[list[str]]) -> None:
    python = make_venv(tmp_path)
    dist = tmp_path / "dist"
    named = {_distribution(arg) for words in commands if words[:2] == ["pip", "install"]
             for arg in words[2:]}  # fmt: skip
    for words in commands:
        if words[:2] == ["git", "clone"]:
            assert words[2:] == [f"{REPOSITORY}.git"], "clone the one repository URL"
        elif words == ["cd", "connectors"]:
            pass  # this checkout is the clone
        elif words == ["make", "build"]:
            _wheels(named, dist)
        elif words[:2] == ["pip", "install"]:
            run(*uv_command(), "pip", "install", "--quiet", "--python", python,
                *_pip_args(words[2:], dist), timeout=180)  # fmt: skip
        else:
            pytest.fail(f"README.md:{line}: {shlex.join(words)!r} is not a command this test knows")
    assert named, "the block installs something"
    modules = {name: BY_NAME[name].import_name for name in named}
    report = json.loads(run(python, "-c", CHECK, json.dumps(modules)))
    for name in named:
        package = BY_NAME[name]
        assert package.schemes <= set(report["schemes"]), f"{name}'s URL schemes not registered"
        assert report[name]["license"] == "MIT"
        assert report[name]["license_files"], f"{name} was installed without its LICENSE"
        assert report[name]["urls"]["Repository"] == REPOSITORY


def test_the_install_blocks_cover_clone_git_url_and_wheels() -> None:
    blocks = [" ".join(map(shlex.join, commands)) for _, commands in install_blocks()]
    assert len(blocks) == 3
    assert any("./packages/connector-postgres" in b for b in blocks)
    assert any("#subdirectory=packages/connector-postgres" in b for b in blocks)
    assert any("make build" in b and "dist/connector_postgres-" in b for b in blocks)
    # The README never sends readers to an index where the packages are not published.
    assert not re.search(r"pip install '?connector-", README.read_text())


def test_the_package_table_lists_every_package_with_its_docs() -> None:
    text = README.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| [connector-")]
    listed = {re.match(r"\| \[([a-z-]+)\]", row).group(1): row for row in rows}  # type: ignore[union-attr]
    assert set(listed) == set(BY_NAME), "the table lists exactly the packages in packages/"
    for name, row in listed.items():
        folder = BY_NAME[name].folder.name
        assert f"]({'packages/' + folder})" in row
        assert f"](packages/{folder}/README.md)" in row, f"{name}: no link to its README"
        assert f"`{BY_NAME[name].import_name}`" in row


def test_an_install_argument_must_be_one_of_our_packages() -> None:
    with pytest.raises(AssertionError, match="not one of this repository's packages"):
        _distribution("connector-postgres")  # from an index: not where the packages are
    assert _distribution("./packages/adapters[chatwoot]") == "connector-adapters"
    assert _distribution("dist/connector_http-0.1.0-py3-none-any.whl") == "connector-http"


def _needs(name: str, extras: set[str]) -> set[str]:
    """The sibling distributions ``name[extras]`` needs at run time, itself included."""
    project = tomllib.loads((BY_NAME[name].folder / "pyproject.toml").read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    needed = {name}
    for requirement in requirements:
        sibling = re.match(r"(connector-[a-z-]+)(?:\[([^\]]*)\])?", requirement)
        if sibling:
            needed |= _needs(
                sibling.group(1), set(filter(None, (sibling.group(2) or "").split(",")))
            )
    return needed


@pytest.mark.parametrize(
    "package", sorted(BY_NAME.values(), key=lambda p: p.name), ids=lambda p: p.name
)
def test_each_package_readme_says_how_to_install_it_from_the_repository(package: Package) -> None:
    readme = (package.folder / "README.md").read_text()
    note = re.search(r"^Not on a package index yet: .*?`(pip install [^`]+)`", readme, re.M)
    assert note, f"{package.folder.name}/README.md: no install-from-the-repository note"
    args = shlex.split(note.group(1))[2:]
    named = {_distribution(arg) for arg in args}
    assert package.name in named
    needed = set()
    for arg in args:
        extras = re.search(r"\[([^\]]*)\]$", arg)
        needed |= _needs(_distribution(arg), set(extras.group(1).split(",")) if extras else set())
    assert needed <= named, f"{note.group(1)!r} leaves out {sorted(needed - named)}"
    assert "../../README.md#install" in readme
