"""Incremental reads: one cursor, ordered by (cursor field, key), resumable by checkpoint.

``read()`` opens ONE find cursor sorted by ``(cursor_field, key_field)`` and filtered to
what comes strictly after the checkpoint (``cursor > c OR (cursor == c AND key > k)``),
then streams it batch by batch (getMore), so documents that share a cursor value are
neither skipped nor repeated, and nothing is queried again per page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from connector_core import Checkpoint, InvalidRequestError, Record
from connector_mongo._values import cast_like, from_json_safe, to_json_safe

Document = dict[str, Any]
OpenBatches = Callable[[Document, list[tuple[str, int]], int], AsyncIterator[list[Document]]]
FindExample = Callable[[str], Awaitable[Any]]

NAME = "mongo"


def as_checkpoint(since: Any) -> Checkpoint | None:
    """A Checkpoint, a ``(cursor, key)`` tuple, or None for a plain value (``>=``)."""
    if isinstance(since, Checkpoint):
        return since
    if isinstance(since, tuple) and len(since) == 2:
        cursor, key = since
        return Checkpoint(cursor=cursor, key=key if isinstance(key, tuple) else (key,))
    return None


class DocumentReader(AsyncIterator[Record]):
    """The async iterator ``MongoConnector.read()`` returns: documents as dicts in
    ``(cursor_field, key_field)`` order from one cursor. ``checkpoint`` is the position
    after the last document handed out (the ``since`` checkpoint, or None, before the
    first); its values are JSON-safe (BSON-only values in relaxed Extended JSON), so
    ``Checkpoint.model_validate_json(reader.checkpoint.model_dump_json())`` resumes
    exactly. A checkpoint whose values went through JSON as plain strings (an ISO
    timestamp, an ObjectId's hex) is cast back to the type stored in the collection.
    """

    def __init__(
        self,
        open_batches: OpenBatches,
        find_example: FindExample,
        *,
        since: Any,
        cursor_field: str | None,
        key_field: str,
        limit: int | None,
        batch_size: int,
        filter: Mapping[str, Any] | None,
        present: Callable[[Document], Document] | None = None,
    ) -> None:
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise InvalidRequestError("limit must be an integer >= 0", connector=NAME)
        if batch_size < 1:
            raise InvalidRequestError("batch_size must be >= 1", connector=NAME)
        for what, field in (("cursor_field", cursor_field), ("key_field", key_field)):
            if field is not None and (not isinstance(field, str) or not field or "$" in field):
                raise InvalidRequestError(
                    f"{what} must be a field name (not empty, no '$')", connector=NAME
                )
        checkpoint = as_checkpoint(since)
        if since is not None and checkpoint is None and cursor_field is None:
            raise InvalidRequestError(
                "since= a plain value needs a cursor_field (or pass a Checkpoint of the key)",
                connector=NAME,
            )
        if filter is not None and not isinstance(filter, Mapping):
            raise InvalidRequestError("filter must be a mapping", connector=NAME)
        self._open_batches = open_batches
        self._present = present
        self._find_example = find_example
        self._cursor_field = cursor_field
        self._key_field = key_field
        self._since_value = since if checkpoint is None else None
        self._since_checkpoint = checkpoint
        self.checkpoint: Checkpoint | None = checkpoint
        self._limit = limit
        self._batch_size = batch_size
        self._filter = dict(filter) if filter else None
        self._batches: AsyncIterator[list[Document]] | None = None
        self._page: list[Document] = []
        self._position = 0
        self._done = limit == 0

    # -- the one query ----------------------------------------------------------------

    async def _cast(self, field: str, value: Any) -> Any:
        value = from_json_safe(value)
        if isinstance(value, str):
            # Through JSON a timestamp or an ObjectId became text: look at one stored
            # value of the field to know what to compare with.
            example = await self._find_example(field)
            return cast_like(value, example)
        return value

    async def _query(self) -> Document:
        cursor, key = self._cursor_field, self._key_field
        conditions: list[Document] = []
        if cursor is not None:
            # Null and missing cursors cannot be ordered against a checkpoint: not read.
            conditions.append({cursor: {"$ne": None}})
        checkpoint = self._since_checkpoint
        if checkpoint is not None:
            if checkpoint.key and len(checkpoint.key) != 1:
                raise InvalidRequestError(
                    f"checkpoint key has {len(checkpoint.key)} values; the key "
                    f"{key!r} is one field",
                    connector=NAME,
                )
            if cursor is not None:
                c = await self._cast(cursor, checkpoint.cursor)
                if checkpoint.key and cursor != key:
                    k = await self._cast(key, checkpoint.key[0])
                    conditions.append({"$or": [{cursor: {"$gt": c}}, {cursor: c, key: {"$gt": k}}]})
                else:
                    conditions.append({cursor: {"$gt": c}})
            elif checkpoint.key:
                conditions.append({key: {"$gt": await self._cast(key, checkpoint.key[0])}})
        elif self._since_value is not None and cursor is not None:
            conditions.append({cursor: {"$gte": await self._cast(cursor, self._since_value)}})
        if self._filter:
            conditions.append(self._filter)
        if not conditions:
            return {}
        return conditions[0] if len(conditions) == 1 else {"$and": conditions}

    def _sort(self) -> list[tuple[str, int]]:
        if self._cursor_field is None or self._cursor_field == self._key_field:
            return [(self._key_field, 1)]
        return [(self._cursor_field, 1), (self._key_field, 1)]

    # -- iteration --------------------------------------------------------------------

    def __aiter__(self) -> DocumentReader:
        return self

    async def __anext__(self) -> Record:
        if self._position >= len(self._page):
            if self._done:
                raise StopAsyncIteration
            if self._batches is None:
                limit = self._limit or 0
                self._batches = self._open_batches(await self._query(), self._sort(), limit)
            try:
                self._page = await anext(self._batches)
            except StopAsyncIteration:
                self._done = True
                raise
            self._position = 0
        document = self._page[self._position]
        self._position += 1
        self.checkpoint = self._after(document)
        return document if self._present is None else self._present(document)

    def _after(self, document: Document) -> Checkpoint:
        cursor, key = self._cursor_field, self._key_field
        try:
            key_value = document[key]
            cursor_value = document[cursor] if cursor is not None else None
        except KeyError as exc:
            raise InvalidRequestError(
                f"a document lacks the field {exc.args[0]!r} that read() orders by: keep "
                "it in the projection (and in every document)",
                connector=NAME,
            ) from None
        if cursor is None:
            return Checkpoint(key=(to_json_safe(key_value),))
        if cursor == key:
            return Checkpoint(cursor=to_json_safe(cursor_value))
        return Checkpoint(cursor=to_json_safe(cursor_value), key=(to_json_safe(key_value),))

    async def aclose(self) -> None:
        """Close the cursor (also done when the iteration ends)."""
        batches, self._batches = self._batches, None
        self._done = True
        if batches is not None and hasattr(batches, "aclose"):
            await batches.aclose()
