"""The shape every package keeps as it grows: no import cycle, and no module reaching into
another's privates."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(ROOT.glob("packages/*/src/*"))
# Underscore names that are public API of the standard library (namedtuple's).
PUBLIC_UNDERSCORE = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})


def _module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(src: Path) -> dict[str, Path]:
    return {_module_name(p, src): p for p in sorted(src.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph(src: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports: at module level, inside
    functions and under ``if TYPE_CHECKING:`` alike (a type-only import is an arrow too)."""
    modules = _modules(src)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, node, is_package)
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                # The longest module name the import names: x.y.z may be module x.y's name z.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_no_import_cycle(src: Path) -> None:
    found = cycles(import_graph(src))
    assert not found, f"import cycles in {src.name}: {found}"


def test_the_cycle_finder_finds_a_type_only_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "src" / "demo"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_a.py").write_text("from demo._b import B\n")
    (pkg / "_b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from demo._a import A\n"
    )
    (pkg / "_c.py").write_text("from . import _a\n")
    assert cycles(import_graph(pkg)) == [["demo._a", "demo._b"]]


# -- privates stay private -------------------------------------------------------------------


def _defined_privates(tree: ast.AST) -> set[str]:
    """Underscore names a module defines: methods, class attributes, ``self._x =``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and _is_self(node.value)
        ):
            names.add(node.attr)  # self._x = ...: its own state (obj._x = ... is not)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _is_self(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    # super()._x and type(self)._x reach the class hierarchy the method belongs to.
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and (node.func.id in ("super", "type"))
    )


def foreign_private_accesses(path: Path) -> Iterator[str]:
    """``obj._name`` where ``obj`` is not ``self``/``cls`` and this module does not define
    ``_name``: reading or writing another module's (or library's) private state."""
    tree = ast.parse(path.read_text())
    own = _defined_privates(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__") or name in PUBLIC_UNDERSCORE:
            continue
        if _is_self(node.value) or name in own:
            continue
        yield f"{path.relative_to(ROOT)}:{node.lineno}: .{name}"


def test_no_module_touches_another_modules_privates() -> None:
    found = [
        hit
        for src in SOURCES
        for path in sorted(src.rglob("*.py"))
        for hit in (foreign_private_accesses(path))
    ]
    assert not found, "\n".join(found)


def test_no_test_patches_asyncio_for_the_whole_process() -> None:
    """Waits are steered through what the code takes (``clock=``, ``sleep=``), never by
    replacing ``asyncio`` functions: a patch there reaches every thread and loop."""
    hits = []
    for path in sorted(ROOT.glob("**/tests/**/*.py")) + sorted(ROOT.glob("tests/*.py")):
        if ".venv" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "setattr" or not node.args:
                continue
            target = node.args[0]
            named = isinstance(target, ast.Name) and target.id == "asyncio"
            dotted = (
                isinstance(target, ast.Constant)
                and isinstance(target.value, str)
                and target.value.startswith("asyncio.")
            )
            if named or dotted:
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not hits, hits
