"""Clean virtual environments made with uv, for the tests that install our packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def uv_command() -> list[str]:
    uv = shutil.which("uv")
    return [uv] if uv else [sys.executable, "-m", "uv"]


def run(*args: str | Path, timeout: float = 50) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT")}
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def make_venv(tmp_path: Path, *packages: str) -> Path:
    """A new virtual environment with ``packages`` installed (none: empty); its python."""
    venv = tmp_path / "venv"
    run(*uv_command(), "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if packages:
        run(*uv_command(), "pip", "install", "--quiet", "--python", python, *packages)
    return python
