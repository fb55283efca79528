"""Database and collection names checked before anything reaches the server.

A name from a caller is only ever a name: one that starts with ``$`` (an operator, or
``$cmd``), holds a NUL, is empty, or names a ``system.`` collection is refused here, so
no caller-given string can turn into a command or reach an internal collection.
"""

from __future__ import annotations

from connector_core import InvalidRequestError

MAX_NAMESPACE_BYTES = 255
"""MongoDB's limit on ``database.collection`` (255 bytes from 4.4 on)."""
MAX_DATABASE_BYTES = 63
_DATABASE_FORBIDDEN = frozenset('/\\. "$*<>:|?')


def check_database_name(name: str) -> None:
    """ValueError saying why ``name`` cannot be a database name (never quoting it)."""
    if not isinstance(name, str) or not name:
        raise ValueError("a database name must be a non-empty string")
    if "\x00" in name or any(c in _DATABASE_FORBIDDEN for c in name):
        raise ValueError('a database name must not contain NUL or any of /\\. "$*<>:|?')
    try:
        size = len(name.encode())
    except UnicodeEncodeError:
        raise ValueError("a database name must be valid UTF-8 (no lone surrogates)") from None
    if size > MAX_DATABASE_BYTES:
        raise ValueError(f"a database name must be at most {MAX_DATABASE_BYTES} bytes")


def collection_problem(name: object, database: str) -> str | None:
    """Why ``name`` cannot be a collection of ``database``, or None when it can."""
    if not isinstance(name, str):
        return f"must be a string, got {type(name).__name__}"
    if not name:
        return "must not be empty"
    if "\x00" in name:
        return "must not contain NUL"
    if "$" in name:
        return "must not contain '$' (names starting with '$' are commands or operators)"
    if name.startswith(".") or name.endswith("."):
        return "must not start or end with '.'"
    if name.startswith("system."):
        return "must not be a system. collection (they belong to the server)"
    try:
        size = len(f"{database}.{name}".encode())
    except UnicodeEncodeError:
        return "must be valid UTF-8 (no lone surrogates)"
    if size > MAX_NAMESPACE_BYTES:
        return f"'database.collection' must be at most {MAX_NAMESPACE_BYTES} bytes"
    return None


def check_collection_name(name: object, database: str, *, connector: str = "mongo") -> str:
    """``name`` when it is a usable collection name of ``database``; else
    InvalidRequestError saying why (with the name shown escaped, never as raw bytes)."""
    problem = collection_problem(name, database)
    if problem is not None:
        shown = ascii(name)[:80] if isinstance(name, str) else type(name).__name__
        raise InvalidRequestError(
            f"invalid collection name {shown}: {problem}", connector=connector
        )
    assert isinstance(name, str)
    return name
