"""Paths of streams, always resolved inside the root: ``..``, absolute paths elsewhere and
symlinks that lead out are refused before anything is opened."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from connector_core import InvalidRequestError
from connector_file._config import GLOB_CHARACTERS

NAME = "file"
# What replace writes before its rename: never a stream's file, never globbed.
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$")


def is_glob(path: str) -> bool:
    return any(c in GLOB_CHARACTERS for c in path)


def _refuse(path: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"path {path!r} {why}; every stream path stays inside the root", connector=NAME
    )


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def relative_path(root: Path, path: str) -> str:
    """``path`` (relative to ``root``, or absolute inside it) as a clean relative POSIX
    path, checked lexically. InvalidRequestError for ``..``, NUL, an absolute path
    outside the root, or nothing."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidRequestError("a stream path must be a non-empty string", connector=NAME)
    if "\x00" in path:
        raise InvalidRequestError("a stream path must not contain NUL characters", connector=NAME)
    text = path.replace("\\", "/")
    if os.path.isabs(text):
        absolute = os.path.normpath(text)
        if not _inside(absolute, str(root)):
            raise _refuse(path, "is an absolute path outside the root")
        text = os.path.relpath(absolute, root)
    parts = PurePosixPath(text).parts
    if ".." in parts:
        raise _refuse(path, "climbs out with '..'")
    clean = PurePosixPath(*[p for p in parts if p not in (".", "")]).as_posix()
    if clean in ("", "."):
        raise _refuse(path, "names the root itself, not a file")
    return clean


def resolve_inside(root: Path, relative: str) -> Path:
    """The real path of ``root / relative`` (every symlink followed), refused when it
    leads out of ``root`` (a real path, symlinks resolved). The file need not exist."""
    real = os.path.realpath(root / relative)
    if not _inside(real, str(root)):
        raise _refuse(relative, "leads out of the root through a symbolic link")
    return Path(real)


def expand_glob(root: Path, pattern: str) -> list[tuple[str, Path]]:
    """The regular files matching ``pattern`` under ``root`` as (relative POSIX path,
    real path), sorted by relative path: a stable order across runs. Every match is
    checked before any is returned, so none is opened when one leads out."""
    found: list[tuple[str, Path]] = []
    for match in root.glob(pattern):
        if TEMPORARY.match(match.name) or not match.is_file():
            continue
        relative = match.relative_to(root).as_posix()
        found.append((relative, resolve_inside(root, relative)))
    found.sort(key=lambda item: item[0])
    return found


def walk_files(root: Path) -> list[str]:
    """Every regular file under ``root`` (not following symlinked directories, skipping
    hidden ones and replace's temporary files), as sorted relative POSIX paths."""
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(directory)
        for name in files:
            if name.startswith("."):
                continue
            path = base / name
            if path.is_file():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)
