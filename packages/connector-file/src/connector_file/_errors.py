"""OSErrors as connector_core's typed errors."""

from __future__ import annotations

import errno
from pathlib import Path

from connector_core import (
    ConnectionFailedError,
    ConnectorError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from connector_file._paths import NAME

# The file system may get over these (a busy device, a network share that stalls).
_TRANSIENT = frozenset(
    code
    for code in (
        getattr(errno, name, None)
        for name in ("EAGAIN", "EBUSY", "EINTR", "EIO", "ESTALE", "ETIMEDOUT", "ENOLCK")
    )
    if code is not None
)
_FULL = frozenset(
    code for code in (getattr(errno, n, None) for n in ("ENOSPC", "EDQUOT", "EFBIG")) if code
)


def translate_error(exc: BaseException, root: Path) -> ConnectorError | None:
    """The typed error for an OSError, None for anything else. A missing root is a lost
    connection (transient: a mount may come back; the connector reconnects); a missing
    file under it is NotFoundError."""
    if not isinstance(exc, OSError):
        return None
    what = f"{type(exc).__name__}: {exc.strerror or exc}"
    if isinstance(exc, FileNotFoundError | NotADirectoryError) and not root.is_dir():
        return ConnectionFailedError(
            f"the root directory {str(root)!r} is not there (unmounted, removed?): {what}",
            connector=NAME,
        )
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"not found: {what}", connector=NAME)
    if isinstance(exc, PermissionError):
        return PermissionDeniedError(f"permission denied: {what}", connector=NAME)
    if isinstance(exc, IsADirectoryError | NotADirectoryError):
        return InvalidRequestError(f"not a regular file: {what}", connector=NAME)
    if exc.errno == errno.ELOOP:
        return InvalidRequestError(
            f"a symbolic link took the place of a checked path: {what}", connector=NAME
        )
    if exc.errno in _FULL:
        return ServiceUnavailableError(
            f"the file system is full: {what}", connector=NAME, transient=False
        )
    if exc.errno in _TRANSIENT:
        return ServiceUnavailableError(f"the file system failed: {what}", connector=NAME)
    return None
