"""scripts/services.d/go_toolchain.py: fetching Go as the module golang.org/toolchain.

End to end against a ``file://`` module proxy holding a tiny fake toolchain, so that no
network is needed (the real download was exercised by ``SERVICES_FORCE_GO_DOWNLOAD=1
scripts/services install``; see docs/decisions/0040).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "services.d" / "go_toolchain.py"
FAKE_GO = '#!/bin/sh\necho "go version go1.99.1 linux/amd64"\n'


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("go_toolchain", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _proxy(tmp_path: Path, tool: ModuleType, files: dict[str, str]) -> tuple[Path, str]:
    """A file:// module proxy serving golang.org/toolchain at go1.99.1 with ``files``."""
    modver = tool.module_version("1.99.1")
    folder = tmp_path / "proxy" / "golang.org" / "toolchain" / "@v"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / f"{modver}.zip", "w") as archive:
        for name, text in files.items():
            archive.writestr(f"golang.org/toolchain@{modver}/{name}", text)  # no unix modes
    return tmp_path / "proxy", modver


def _run(dest: Path, proxy: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOPROXY": f"file://{proxy},https://proxy.golang.org,direct"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "go1.99.1", str(dest)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_fetches_unpacks_restores_exec_bits_and_verifies(tmp_path: Path, tool: ModuleType) -> None:
    proxy, modver = _proxy(
        tmp_path,
        tool,
        {"bin/go": FAKE_GO, "pkg/tool/linux_amd64/compile": "x", "src/fmt/print.go": "package"},
    )
    dest = tmp_path / "cache" / "go1.99.1"
    done = _run(dest, proxy)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(dest / "bin" / "go")
    assert f"no pinned hash for {modver}" in done.stderr
    assert os.access(dest / "bin" / "go", os.X_OK)
    assert os.access(dest / "pkg" / "tool" / "linux_amd64" / "compile", os.X_OK)
    assert not (dest / "src" / "fmt" / "print.go").stat().st_mode & stat.S_IXUSR
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["go1.99.1"]  # no leftovers


def test_refuses_a_toolchain_that_is_not_the_version(tmp_path: Path, tool: ModuleType) -> None:
    proxy, _ = _proxy(tmp_path, tool, {"bin/go": FAKE_GO.replace("1.99.1", "1.19.8")})
    dest = tmp_path / "cache" / "go1.99.1"
    done = _run(dest, proxy)
    assert done.returncode != 0
    assert "version failed" in done.stderr
    assert not dest.exists()


def test_refuses_a_hash_mismatch(
    tmp_path: Path, tool: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, modver = _proxy(tmp_path, tool, {"bin/go": FAKE_GO})
    monkeypatch.setitem(tool.PINNED, modver, "h1:AAAA")
    monkeypatch.setenv("GOPROXY", f"file://{proxy}")
    dest = tmp_path / "cache" / "go1.99.1"
    with pytest.raises(SystemExit, match="does not match pinned h1:AAAA"):
        tool.main(["go_toolchain.py", "1.99.1", str(dest)])
    assert not dest.exists()


def test_module_hash_is_go_sum_h1(tmp_path: Path, tool: ModuleType) -> None:
    # dirhash.Hash1: sha256 over "<sha256 hex>  <name>\n" lines, sorted by name.
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m@v1/b", "B")
        archive.writestr("m@v1/a", "A")
    lines = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in (("m@v1/a", b"A"), ("m@v1/b", b"B"))
    )
    want = "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()
    with zipfile.ZipFile(path) as archive:
        assert tool.module_hash(archive) == want


def test_the_pinned_hash_is_go_sums(tool: ModuleType) -> None:
    # As `go mod download -json golang.org/toolchain@v0.0.1-go1.24.13.linux-amd64` reports.
    assert tool.PINNED["v0.0.1-go1.24.13.linux-amd64"] == (
        "h1:5sgfUhn9QCgVl4UYj32GrIYFHI3bi2UX55tNfupXwxc="
    )


def test_rejects_paths_outside_the_destination(tmp_path: Path, tool: ModuleType) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("golang.org/toolchain@v/../../escape", "x")
    dest = tmp_path / "dest"
    dest.mkdir()
    with zipfile.ZipFile(path) as archive, pytest.raises(SystemExit, match="unsafe path"):
        tool.unpack(archive, "golang.org/toolchain@v/", str(dest))
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize(
    ("goproxy", "expected"),
    [
        ("", "https://proxy.golang.org"),
        ("https://mirror.example/go/,direct", "https://mirror.example/go"),
        ("direct|https://b.example", "https://b.example"),
        ("file:///srv/mods", "file:///srv/mods"),
    ],
)
def test_proxy_is_the_first_url_in_goproxy(
    tool: ModuleType, monkeypatch: pytest.MonkeyPatch, goproxy: str, expected: str
) -> None:
    monkeypatch.setenv("GOPROXY", goproxy)
    assert tool.proxy_base() == expected


@pytest.mark.parametrize("goproxy", ["off", "direct"])
def test_goproxy_without_a_proxy_is_refused(
    tool: ModuleType, monkeypatch: pytest.MonkeyPatch, goproxy: str
) -> None:
    monkeypatch.setenv("GOPROXY", goproxy)
    with pytest.raises(SystemExit, match="GOPROXY"):
        tool.proxy_base()
