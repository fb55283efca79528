"""Schema inference: fields and portable types from a sample of each collection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connector_core import FieldType, Stream, StreamField
from connector_mongo._results import IndexInfo
from connector_mongo._values import native_type, portable_of_native

# Field names that usually hold a last-modified stamp, best first.
CURSOR_NAMES = ("updated_at", "updatedAt", "modified_at", "modifiedAt", "last_modified", "ts")
_CURSOR_TYPES = frozenset({FieldType.DATETIME, FieldType.INTEGER, FieldType.NUMBER})


class CollectionStream(Stream):
    """A collection as a stream of ``discover()``: connector_core's
    :class:`~connector_core.Stream` (fields inferred from a sample, ``_id`` (or
    ``config.id_field``) as primary key, the estimated count) with its indexes."""

    kind: str = "collection"
    indexes: tuple[IndexInfo, ...] = ()
    sampled: int = 0
    """How many documents the fields were inferred from."""


def index_info(spec: Mapping[str, Any]) -> IndexInfo:
    """An :class:`IndexInfo` from one document of ``listIndexes``."""
    keys = tuple(
        (str(k), v if isinstance(v, int | str) else str(v)) for k, v in spec["key"].items()
    )
    expire = spec.get("expireAfterSeconds")
    return IndexInfo(
        name=str(spec["name"]),
        keys=keys,
        unique=bool(spec.get("unique", False)),
        sparse=bool(spec.get("sparse", False)),
        expire_after=float(expire) if expire is not None else None,
    )


class _FieldSeen:
    __slots__ = ("count", "item_types", "nulls", "types")

    def __init__(self) -> None:
        self.count = 0
        self.nulls = 0
        self.types: dict[str, None] = {}  # insertion-ordered set of native type names
        self.item_types: dict[str, None] = {}


def _portable(natives: Iterable[str]) -> tuple[FieldType, str | None]:
    names = list(natives)
    if not names:
        return FieldType.UNKNOWN, None
    portable = {portable_of_native(n) for n in names}
    native = "|".join(names)
    if len(portable) == 1:
        return portable.pop(), native
    if portable == {FieldType.INTEGER, FieldType.NUMBER}:
        return FieldType.NUMBER, native  # integers and doubles: numbers
    return FieldType.JSON, native  # several types: any JSON value, native_type lists them


def infer_stream(
    name: str,
    documents: list[Mapping[str, Any]],
    *,
    database: str,
    id_field: str,
    estimated_count: int | None,
    indexes: tuple[IndexInfo, ...],
) -> CollectionStream:
    """The stream of collection ``name`` from a sample of its documents (``_id`` shown
    as ``id_field``). A field absent from some sampled documents, or null in some, is
    nullable; one seen with several types has type JSON and lists them in
    ``native_type`` (``int|string``); integers mixed with doubles are NUMBER."""
    seen: dict[str, _FieldSeen] = {}
    for document in documents:
        for field, value in document.items():
            shown = id_field if field == "_id" else field
            entry = seen.get(shown)
            if entry is None:
                entry = seen[shown] = _FieldSeen()
            entry.count += 1
            if value is None:
                entry.nulls += 1
                continue
            entry.types[native_type(value)] = None
            if isinstance(value, list):
                for item in value:
                    if item is not None:
                        entry.item_types[native_type(item)] = None
    total = len(documents)
    fields: list[StreamField] = []
    for field, entry in seen.items():
        kind, native = _portable(entry.types)
        item_type = None
        if kind is FieldType.ARRAY and entry.item_types:
            item_type, _ = _portable(entry.item_types)
        nullable = field != id_field and (entry.count < total or entry.nulls > 0)
        fields.append(
            StreamField(
                name=field, type=kind, nullable=nullable, native_type=native, item_type=item_type
            )
        )
    if id_field not in seen:  # an empty collection: _id is still its key
        fields.insert(0, StreamField(name=id_field, type=FieldType.UNKNOWN, nullable=False))
    types = {f.name: f.type for f in fields}
    cursor = next(
        (c for c in CURSOR_NAMES if c in types and types[c] in _CURSOR_TYPES and c != id_field),
        None,
    )
    return CollectionStream(
        name=name,
        namespace=database,
        fields=tuple(fields),
        primary_key=(id_field,),
        cursor_field=cursor,
        estimated_count=estimated_count,
        indexes=indexes,
        sampled=total,
    )
