"""Quoting identifiers. Values never go into SQL text: they are bind parameters."""

from __future__ import annotations

from collections.abc import Iterable

from connector_core import InvalidRequestError

MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL truncates longer names silently


def quote_ident(name: str) -> str:
    """Quote one identifier: double it every ``"`` inside and wrap it in ``"``.

    Raises InvalidRequestError for an empty name or one with a NUL character, which
    PostgreSQL cannot represent.
    """
    if not name or "\x00" in name:
        raise InvalidRequestError(f"not a valid identifier: {name!r}", connector="postgres")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    """The schema-qualified name, both parts quoted."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def column_list(names: Iterable[str]) -> str:
    """Quoted names separated by commas."""
    return ", ".join(quote_ident(n) for n in names)
