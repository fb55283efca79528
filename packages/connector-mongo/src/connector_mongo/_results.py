"""What writes and index look-ups return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connector_core import WriteResult


class BulkWriteResult(WriteResult):
    """The outcome of ``bulk_write()``, ``insert_many()`` and ``write()``:
    connector_core's :class:`~connector_core.WriteResult` (``written``, ``failed``,
    ``errors`` with the index of each failing operation) and MongoDB's counts.

    ``written + failed`` is the number of operations given. In an ordered batch the
    operations after the first failure are not attempted: each is reported failed
    ("not attempted"), never dropped. Read ``ok`` or ``errors``: a result with failures
    dropped unread logs a warning.
    """

    inserted: int = 0
    matched: int = 0
    modified: int = 0
    deleted: int = 0
    upserted: int = 0
    upserted_ids: dict[int, Any] = Field(default_factory=dict)
    """Operation index -> the ``_id`` of the document its upsert inserted."""


class UpdateResult(BaseModel):
    """The outcome of ``update_one/many()`` and ``replace_one()``."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    matched: int
    modified: int
    upserted_id: Any = None
    """The ``_id`` of the document an upsert inserted (None when it updated one)."""


class IndexInfo(BaseModel):
    """One index of a collection: its name, keys in order, and options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    keys: tuple[tuple[str, int | str], ...]
    """``(field, direction)`` pairs: 1, -1, or a kind such as ``"text"``, ``"2dsphere"``."""
    unique: bool = False
    sparse: bool = False
    expire_after: float | None = None
    """TTL: seconds after the indexed date when documents are deleted."""

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(field for field, _ in self.keys)
