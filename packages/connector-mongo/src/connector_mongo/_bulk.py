"""Bulk writes: PyMongo's results and BulkWriteError turned into one BulkWriteResult with
a RecordError per failing operation, the index being the operation's in the caller's list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.results import BulkWriteResult as PyMongoBulkResult

from connector_core import ErrorCode, RecordError
from connector_mongo._errors import DUPLICATE_KEY_CODES, duplicate_key, server_message
from connector_mongo._results import BulkWriteResult

WriteOperation = InsertOne[Any] | UpdateOne | UpdateMany | ReplaceOne[Any] | DeleteOne | DeleteMany
OPERATION_TYPES = (InsertOne, UpdateOne, UpdateMany, ReplaceOne, DeleteOne, DeleteMany)

# Server codes of a refused operation that say the request is malformed.
_INVALID = frozenset({2, 9, 14, 52, 56, 66})


def error_code(server_code: Any) -> ErrorCode:
    """The ErrorCode of one refused write operation."""
    if server_code in DUPLICATE_KEY_CODES:
        return ErrorCode.CONFLICT
    if server_code in _INVALID:
        return ErrorCode.INVALID_REQUEST
    return ErrorCode.QUERY


def operation_key(operation: Any) -> Any:
    """The ``_id`` (or filter) that names the document of one operation (or of one
    document given to insert_many), for RecordError."""
    document = operation if isinstance(operation, Mapping) else getattr(operation, "_doc", None)
    if isinstance(document, Mapping) and "_id" in document:
        return document["_id"]
    spec = getattr(operation, "_filter", None)
    if isinstance(spec, Mapping):
        return dict(spec)
    return None


def from_result(result: PyMongoBulkResult, count: int) -> BulkWriteResult:
    """A batch that went through whole."""
    upserted = {int(i): v for i, v in (result.upserted_ids or {}).items()}
    return BulkWriteResult(
        written=count,
        inserted=result.inserted_count,
        matched=result.matched_count,
        modified=result.modified_count,
        deleted=result.deleted_count,
        upserted=result.upserted_count,
        upserted_ids=upserted,
    )


def from_error_details(
    details: Mapping[str, Any],
    operations: Sequence[Any],
    *,
    ordered: bool,
    scrub: Any = None,
) -> BulkWriteResult:
    """A batch that partly failed (``BulkWriteError.details``): every failing operation
    reported with its index; in an ordered batch every operation after the first failure
    reported as not attempted."""
    total = len(operations)
    errors: list[RecordError] = []
    failed_indexes: set[int] = set()
    for item in details.get("writeErrors", ()):
        index = int(item.get("index", -1))
        code = item.get("code")
        message = server_message(item, "the server refused the operation")
        if scrub is not None:
            message = scrub(message)
        key = duplicate_key(item)
        if key is None and 0 <= index < total:
            key = operation_key(operations[index])
        errors.append(
            RecordError(
                index=index,
                message=f"{message} (code {code})" if code is not None else message,
                code=error_code(code),
                key=key,
            )
        )
        failed_indexes.add(index)
    if ordered and errors:
        first = min(failed_indexes)
        for index in range(first + 1, total):
            errors.append(
                RecordError(
                    index=index,
                    message=f"not attempted: operation #{first} failed first and the batch "
                    "is ordered",
                    code=errors[0].code,
                    key=operation_key(operations[index]),
                )
            )
            failed_indexes.add(index)
    errors.sort(key=lambda e: e.index)
    failed = len(failed_indexes)
    upserted = {int(u["index"]): u.get("_id") for u in details.get("upserted", ())}
    return BulkWriteResult(
        written=total - failed,
        failed=failed,
        errors=tuple(errors),
        inserted=int(details.get("nInserted", 0)),
        matched=int(details.get("nMatched", 0)),
        modified=int(details.get("nModified", 0)),
        deleted=int(details.get("nRemoved", 0)),
        upserted=int(details.get("nUpserted", 0)),
        upserted_ids=upserted,
    )
