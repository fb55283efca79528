"""The JSON codec of NDJSON lines and JSON arrays (decision 0111)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from connector_file._types import json_default

loads: Callable[[bytes], Any] = json.loads
"""Decode one JSON text (bytes, UTF-8); ValueError when it is not valid JSON."""

_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=json_default
)


def dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON; TypeError or ValueError (NaN, infinity, a
    value JSON has no form for) when it cannot be."""
    return _encoder.encode(value).encode("utf-8")
