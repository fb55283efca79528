"""json and jsonb as Python values, in binary format (so that binary COPY encodes them)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

# jsonb's binary format: a version byte (1), then the text.
_JSONB_VERSION = b"\x01"


def json_encode(value: Any) -> bytes:
    # json's binary format is its text.
    return json.dumps(value).encode()


def jsonb_encode(value: Any) -> bytes:
    return _JSONB_VERSION + json.dumps(value).encode()


def jsonb_decode(data: bytes) -> Any:
    if data[:1] != _JSONB_VERSION:
        raise ValueError(f"unsupported jsonb binary format version {data[:1]!r}")
    return json.loads(data[1:])


async def use_json_codecs(connection: asyncpg.Connection) -> None:
    """Make ``connection`` take and return json and jsonb as Python values (asyncpg's
    default is their text). In binary format, so that binary COPY (write, copy_in) can
    encode them too: a text-only codec has no binary encoder and COPY refuses the column."""
    await connection.set_type_codec(
        "json",
        encoder=json_encode,
        decoder=json.loads,
        schema="pg_catalog",
        format="binary",
    )
    await connection.set_type_codec(
        "jsonb",
        encoder=jsonb_encode,
        decoder=jsonb_decode,
        schema="pg_catalog",
        format="binary",
    )
