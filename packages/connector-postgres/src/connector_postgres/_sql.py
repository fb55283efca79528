"""What a statement's text says about it: whether it only reads (and so may be retried)."""

from __future__ import annotations

import re

# A statement that only reads: safe to run again after a transient failure. Anything
# that might write (or lock, or take a sequence value) is not retried unless the caller
# says so with idempotent=True.
_READ_START = re.compile(
    r"^\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*(?:select|with|values|table|show|explain)\b",
    re.IGNORECASE | re.DOTALL,
)
_MAY_WRITE = re.compile(
    r"\b(?:insert|update|delete|merge|into|copy|call|do|lock|nextval|setval|"
    r"pg_advisory\w*|for\s+(?:no\s+key\s+)?(?:update|share|key\s+share))\b",
    re.IGNORECASE,
)


def is_read_only(sql: str) -> bool:
    """Whether ``sql`` looks like a pure read (and so may be retried)."""
    return bool(_READ_START.match(sql)) and not _MAY_WRITE.search(sql)
