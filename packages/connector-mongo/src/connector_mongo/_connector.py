"""MongoConnector: PyMongo's AsyncMongoClient behind connector_core's lifecycle and road.

Every driver call runs on :meth:`BaseConnector.run` (rate limit, circuit breaker,
timeout, error translation, retry, stats); the parts live in modules of their own:
configuration (``_config.py``), names (``_names.py``), errors (``_errors.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    MutableMapping,
    Sequence,
)
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any, ClassVar, Literal, TypeAlias

import bson
import pymongo
from bson.codec_options import CodecOptions
from bson.errors import BSONError
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient, InsertOne, ReplaceOne, ReturnDocument
from pymongo import errors as mongo_errors
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.command_cursor import AsyncCommandCursor
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.results import UpdateResult as PyMongoUpdateResult

from connector_core import (
    USE_DEFAULT,
    BaseConnector,
    Catalog,
    ConnectorError,
    DriverLogScrubber,
    ErrorCode,
    InvalidRequestError,
    NotConnectedError,
    NotFoundError,
    Record,
    RecordError,
    SchemaChange,
    Stream,
    UseDefault,
    WriteResult,
    scrub_secrets,
)
from connector_mongo._bulk import OPERATION_TYPES, WriteOperation, from_error_details, from_result
from connector_mongo._config import MongoConfig
from connector_mongo._discover import CollectionStream, index_info, infer_stream
from connector_mongo._errors import translate_error
from connector_mongo._names import check_collection_name, collection_problem
from connector_mongo._read import DocumentReader
from connector_mongo._results import BulkWriteResult, IndexInfo, UpdateResult
from connector_mongo._transaction import MongoTransaction, Transactions
from connector_mongo._values import TYPE_REGISTRY
from connector_mongo._watch import ChangeStream

try:
    __version__ = _version("connector-mongo")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

Document: TypeAlias = dict[str, Any]
Filter: TypeAlias = Mapping[str, Any]
SortSpec: TypeAlias = Sequence[tuple[str, int]] | Mapping[str, int] | None
_Cursor: TypeAlias = AsyncCursor[Document] | AsyncCommandCursor[Document]

# Documents are encoded for write() with the options the client decodes with.
_CODEC: CodecOptions[Any] = CodecOptions(
    tz_aware=True, uuid_representation=4, type_registry=TYPE_REGISTRY
)
# Per-document allowance of a bulk operation's deadline, on top of config.timeout.
_BULK_SECONDS_PER_DOCUMENT = 0.001


# PyMongo logs every command (name and body) at DEBUG: its records are scrubbed.
_DRIVER_LOGS = DriverLogScrubber("pymongo")


class MongoConnector(BaseConnector[MongoConfig]):
    """A MongoDB connector over PyMongo's ``AsyncMongoClient`` (its own pool).

    Errors are connector_core's typed errors: ConnectionFailedError (no server, network
    error; transient), ConnectorTimeoutError (socket or server time limit),
    AuthenticationError (never retried), PermissionDeniedError, ConflictError (duplicate
    key, with ``details["key"]`` when the server says it), NotFoundError,
    InvalidRequestError (a bad filter, pipeline, option or collection name) and QueryError
    (anything else the server refused, with ``details["code"]`` and
    ``details["server_message"]``).
    """

    name: ClassVar[str] = "mongo"
    version: ClassVar[str] = __version__
    config_class: ClassVar[type[MongoConfig]] = MongoConfig

    def __init__(
        self, config: MongoConfig, *, event_listeners: Sequence[Any] = (), **kwargs: Any
    ) -> None:
        """Args:
        config: the connector's MongoConfig.
        event_listeners: PyMongo monitoring listeners (``pymongo.monitoring``: command,
            pool, server events) given to the client, for APM and tests.
        kwargs: BaseConnector's (retry_policy, rate_limiter, circuit_breaker, clock,
            sleep).
        """
        super().__init__(config, **kwargs)
        self._event_listeners = list(event_listeners)
        self._client: AsyncMongoClient[Document] | None = None
        self._transactions = Transactions(self.run, self._start_session)
        _DRIVER_LOGS.register(self._known_secrets)

    # -- driver hooks -------------------------------------------------------------------

    async def _connect(self) -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            **self.config.client_settings(), event_listeners=self._event_listeners
        )
        try:
            # One real round trip (authenticating, when there are credentials); server
            # selection bounded by connect_timeout, so a dead server says "no server
            # available" rather than the road's bare timeout.
            with pymongo.timeout(self.config.connect_timeout * 0.9):
                await client[self.config.database].command("ping")
        except BaseException:
            await client.close()
            raise
        self._client = client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _ping(self) -> None:
        await self.database.command("ping")

    def _translate_error(self, exc: BaseException) -> ConnectorError | None:
        return translate_error(exc)

    def _is_connection_lost(self, error: ConnectorError) -> bool:
        # The driver's pool heals itself (it re-discovers servers and replaces dead
        # connections): re-creating the client would break every other task's cursor.
        return False

    # -- the driver ---------------------------------------------------------------------

    @property
    def client(self) -> AsyncMongoClient[Document]:
        """The AsyncMongoClient, for what this class does not cover (NotConnectedError
        before ``connect()``). Calls made on it bypass retries, stats and translation."""
        if self._client is None:
            raise NotConnectedError(
                "not connected: call connect() or use 'async with' first", connector=self.name
            )
        return self._client

    @property
    def database(self) -> AsyncDatabase[Document]:
        """The configured database (``config.database``) of :attr:`client`."""
        return self.client[self.config.database]

    def collection(self, name: str) -> AsyncCollection[Document]:
        """The collection ``name`` of the configured database, after checking the name
        (InvalidRequestError for an empty, ``$``-holding, NUL-holding or ``system.``
        name: nothing reaches the server)."""
        check_collection_name(name, self.config.database, connector=self.name)
        return self.database[name]

    async def _start_session(self) -> AsyncClientSession:
        return self.client.start_session()

    def _session(self) -> AsyncClientSession | None:
        return self._transactions.session()

    def _idempotent(self, idempotent: bool) -> bool:
        # Inside a transaction nothing is retried: the whole block must run again.
        return idempotent and self._session() is None

    def _bulk_timeout(self, count: int) -> float | None:
        """The deadline of a bulk operation of ``count`` documents: ``timeout`` plus 1 ms
        per document (a floor of 1,000 documents/s)."""
        timeout = self.config.timeout
        return None if timeout is None else timeout + count * _BULK_SECONDS_PER_DOCUMENT

    def _scrub(self, text: str) -> str:
        return scrub_secrets(text, self._known_secrets())

    # -- commands -----------------------------------------------------------------------

    async def command(
        self,
        command: Mapping[str, Any],
        *,
        idempotent: bool = False,
        timeout: float | UseDefault | None = USE_DEFAULT,
    ) -> Document:
        """Run a database command on the configured database (``{"dbStats": 1}``); its
        reply. Not retried unless ``idempotent=True``; ``timeout`` replaces
        ``config.timeout`` for this call. Raises InvalidRequestError (an unknown command),
        QueryError, ... like every operation."""
        if not isinstance(command, Mapping) or not command:
            raise InvalidRequestError(
                "command must be a non-empty mapping such as {'ping': 1}", connector=self.name
            )
        spec = dict(command)
        session = self._session()

        async def call() -> Document:
            reply: Document = await self.database.command(spec, session=session)
            return reply

        return await self.run(
            "command", call, idempotent=self._idempotent(idempotent), timeout=timeout
        )

    # -- reads --------------------------------------------------------------------------

    def find(
        self,
        collection: str,
        filter: Filter | None = None,
        *,
        projection: Mapping[str, Any] | Sequence[str] | None = None,
        sort: SortSpec = None,
        limit: int = 0,
        skip: int = 0,
        batch_size: int | None = None,
    ) -> AsyncIterator[Document]:
        """The documents matching ``filter``, streamed: ``batch_size`` documents per round
        trip (default ``config.batch_size``), so memory stays flat whatever the result.

        The first batch is retried on transient errors (nothing was handed out yet); the
        later ones (getMore on the server's cursor) are not: a failure mid-stream raises.
        Stop early with ``contextlib.aclosing(connector.find(...))`` to close the server's
        cursor at once. Raises InvalidRequestError for a bad collection name (before any
        round trip), a bad filter, sort or projection (from the server).
        """
        coll = self.collection(collection)
        _check_filter(filter)
        size = self._batch_size(batch_size)
        _check_count("limit", limit)
        _check_count("skip", skip)
        session = self._session()
        sort_spec = _sort_list(sort)

        async def open_cursor() -> _Cursor:
            return coll.find(
                filter,
                projection,
                sort=sort_spec,
                limit=limit,
                skip=skip,
                batch_size=size,
                session=session,
            )

        return self._stream("find", open_cursor, size)

    def aggregate(
        self,
        collection: str,
        pipeline: Sequence[Mapping[str, Any]],
        *,
        batch_size: int | None = None,
        allow_disk_use: bool | None = None,
    ) -> AsyncIterator[Document]:
        """The results of an aggregation ``pipeline``, streamed like :meth:`find`
        (first batch retried, later ones not). Raises InvalidRequestError for a bad
        collection name or a pipeline the server refuses (unknown stage, ...)."""
        coll = self.collection(collection)
        size = self._batch_size(batch_size)
        if isinstance(pipeline, Mapping) or not all(isinstance(s, Mapping) for s in pipeline):
            raise InvalidRequestError(
                "pipeline must be a list of stages (mappings)", connector=self.name
            )
        stages = [dict(stage) for stage in pipeline]
        options: dict[str, Any] = {"batchSize": size}
        if allow_disk_use is not None:
            options["allowDiskUse"] = allow_disk_use
        session = self._session()
        # A pipeline that writes ($out, $merge) must not run twice.
        writes = any(next(iter(stage), "") in ("$out", "$merge") for stage in stages)

        async def open_cursor() -> _Cursor:
            return await coll.aggregate(stages, session=session, **options)

        return self._stream("aggregate", open_cursor, size, idempotent=not writes)

    async def _stream(
        self,
        operation: str,
        open_cursor: Callable[[], Awaitable[_Cursor]],
        size: int,
        *,
        idempotent: bool = True,
    ) -> AsyncIterator[Document]:
        # One generator level, fetching whole batches itself: each document costs one
        # step, each batch one trip on the road.
        cursor: _Cursor | None = None

        async def first_batch() -> list[Document]:
            nonlocal cursor
            if cursor is not None:  # a retry: the failed attempt's cursor is dropped
                with contextlib.suppress(Exception):
                    await cursor.close()
            cursor = await open_cursor()
            return await cursor.to_list(size)

        try:
            batch = await self.run(operation, first_batch, idempotent=self._idempotent(idempotent))
            assert cursor is not None
            current = cursor
            run = self.run
            while True:
                for document in batch:
                    yield document
                if not current.alive:
                    return
                batch = await run(operation, lambda: current.to_list(size), retry=False)
                if not batch:
                    return
        finally:
            if cursor is not None:
                # Best effort (killCursors): after a lost connection the error that ended
                # the stream is the one to see, not a second one from closing.
                with contextlib.suppress(Exception):
                    await cursor.close()

    def _batch_size(self, batch_size: int | None) -> int:
        if batch_size is None:
            return self.config.batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidRequestError("batch_size must be an integer >= 1", connector=self.name)
        return batch_size

    async def find_one(
        self,
        collection: str,
        filter: Filter | None = None,
        *,
        projection: Mapping[str, Any] | Sequence[str] | None = None,
        sort: SortSpec = None,
    ) -> Document | None:
        """The first document matching ``filter`` (in ``sort`` order), or None. Retried
        on transient errors."""
        coll = self.collection(collection)
        session = self._session()
        sort_spec = _sort_list(sort)

        async def call() -> Document | None:
            return await coll.find_one(filter, projection, sort=sort_spec, session=session)

        return await self.run("find_one", call, idempotent=self._idempotent(True))

    async def count(self, collection: str, filter: Filter | None = None) -> int:
        """How many documents match ``filter`` (exact: ``countDocuments``). Retried on
        transient errors. For a fast estimate of a whole collection use
        :meth:`estimated_count`."""
        coll = self.collection(collection)
        session = self._session()
        spec = dict(filter or {})

        async def call() -> int:
            return await coll.count_documents(spec, session=session)

        return await self.run("count", call, idempotent=self._idempotent(True))

    async def estimated_count(self, collection: str) -> int:
        """The collection's document count from its metadata (fast, maybe a little off)."""
        coll = self.collection(collection)

        async def call() -> int:
            return await coll.estimated_document_count()

        return await self.run("estimated_count", call, idempotent=True)

    async def distinct(self, collection: str, key: str, filter: Filter | None = None) -> list[Any]:
        """The distinct values of field ``key`` among the documents matching ``filter``."""
        coll = self.collection(collection)
        if not isinstance(key, str) or not key or key.startswith("$"):
            raise InvalidRequestError("key must be a field name", connector=self.name)
        session = self._session()

        async def call() -> list[Any]:
            return await coll.distinct(key, filter, session=session)

        return await self.run("distinct", call, idempotent=self._idempotent(True))

    # -- writes -------------------------------------------------------------------------

    async def insert_one(self, collection: str, document: Mapping[str, Any]) -> Any:
        """Insert ``document``; returns its ``_id`` (generated when it had none). Not
        retried. Raises ConflictError for a duplicate key (``details["key"]`` when the
        server names it), SerializationError for a value BSON cannot hold."""
        coll = self.collection(collection)
        session = self._session()
        doc = dict(document)

        async def call() -> Any:
            return (await coll.insert_one(doc, session=session)).inserted_id

        return await self.run("insert_one", call)

    async def insert_many(
        self, collection: str, documents: Iterable[Mapping[str, Any]], *, ordered: bool = True
    ) -> BulkWriteResult:
        """Insert ``documents`` in bulk (PyMongo splits them into the server's batch
        size). Returns a :class:`BulkWriteResult`: a rejected document (a duplicate key:
        ConflictError's code) is a RecordError with its index, never an exception; with
        ``ordered=True`` the ones after it are reported not attempted. Documents without
        ``_id`` get one, set in place by the driver. Not retried. The deadline is
        ``timeout`` plus 1 ms per document."""
        coll = self.collection(collection)
        docs: list[Any] = documents if isinstance(documents, list) else list(documents)
        for index, document in enumerate(docs):
            # ``type(...) is dict`` first: the ABC check costs ~0.6 s of CPU per million.
            if type(document) is not dict and not isinstance(
                document, MutableMapping | RawBSONDocument
            ):
                raise InvalidRequestError(
                    f"document #{index} is a {type(document).__name__}, not a dict (the "
                    "driver sets a missing _id in it)",
                    connector=self.name,
                )
        if not docs:
            return BulkWriteResult()
        session = self._session()

        async def call() -> BulkWriteResult:
            # The driver's own insert_many: no operation object per document.
            try:
                await coll.insert_many(docs, ordered=ordered, session=session)
            except mongo_errors.BulkWriteError as exc:
                return self._bulk_failure(exc, docs, ordered)
            return BulkWriteResult(written=len(docs), inserted=len(docs))

        return await self.run("insert_many", call, timeout=self._bulk_timeout(len(docs)))

    def _bulk_failure(
        self, exc: mongo_errors.BulkWriteError, operations: Sequence[Any], ordered: bool
    ) -> BulkWriteResult:
        """The result of a batch that partly failed; raises for a write concern error."""
        details = exc.details
        concern = details.get("writeConcernErrors") or []
        if concern:
            # What was written may not be durable: raise (the per-operation results stay
            # in the cause's details) rather than report success.
            first = concern[0]
            raise mongo_errors.WriteConcernError(
                first.get("errmsg", "write concern error"), first.get("code"), first
            ) from exc
        return from_error_details(details, operations, ordered=ordered, scrub=self._scrub)

    async def update_one(
        self, collection: str, filter: Filter, update: Any, *, upsert: bool = False
    ) -> UpdateResult:
        """Apply ``update`` (operators such as ``{"$set": ...}``, or a pipeline) to the
        first document matching ``filter``. Not retried."""
        return await self._update("update_one", collection, filter, update, upsert)

    async def update_many(
        self, collection: str, filter: Filter, update: Any, *, upsert: bool = False
    ) -> UpdateResult:
        """Apply ``update`` to every document matching ``filter``. Not retried."""
        return await self._update("update_many", collection, filter, update, upsert)

    async def replace_one(
        self,
        collection: str,
        filter: Filter,
        replacement: Mapping[str, Any],
        *,
        upsert: bool = False,
    ) -> UpdateResult:
        """Replace the first document matching ``filter`` by ``replacement``. Retried on
        transient errors (replacing twice leaves the same document)."""
        coll = self.collection(collection)
        session = self._session()
        doc = dict(replacement)

        async def call() -> PyMongoUpdateResult:
            return await coll.replace_one(filter, doc, upsert=upsert, session=session)

        result = await self.run("replace_one", call, idempotent=self._idempotent(True))
        return _update_result(result)

    async def _update(
        self, operation: str, collection: str, filter: Filter, update: Any, upsert: bool
    ) -> UpdateResult:
        coll = self.collection(collection)
        session = self._session()
        method = coll.update_one if operation == "update_one" else coll.update_many

        async def call() -> PyMongoUpdateResult:
            return await method(filter, update, upsert=upsert, session=session)

        return _update_result(await self.run(operation, call))

    async def delete_one(self, collection: str, filter: Filter) -> int:
        """Delete the first document matching ``filter``; how many were deleted (0 or 1)."""
        coll = self.collection(collection)
        session = self._session()

        async def call() -> int:
            return (await coll.delete_one(filter, session=session)).deleted_count

        return await self.run("delete_one", call)

    async def delete_many(self, collection: str, filter: Filter) -> int:
        """Delete every document matching ``filter``; how many were deleted. Retried on
        transient errors (deleting again deletes nothing more)."""
        coll = self.collection(collection)
        session = self._session()

        async def call() -> int:
            return (await coll.delete_many(filter, session=session)).deleted_count

        return await self.run("delete_many", call, idempotent=self._idempotent(True))

    async def find_one_and_update(
        self,
        collection: str,
        filter: Filter,
        update: Any,
        *,
        projection: Mapping[str, Any] | Sequence[str] | None = None,
        sort: SortSpec = None,
        upsert: bool = False,
        return_document: Literal["before", "after"] = "after",
    ) -> Document | None:
        """Update the first document matching ``filter`` (in ``sort`` order) and return
        it as it is after the update (``return_document="before"``: as it was), or None
        when nothing matched. Atomic on the server; not retried."""
        coll = self.collection(collection)
        if return_document not in ("before", "after"):
            raise InvalidRequestError(
                "return_document must be 'before' or 'after'", connector=self.name
            )
        which = ReturnDocument.AFTER if return_document == "after" else ReturnDocument.BEFORE
        session = self._session()
        sort_spec = _sort_list(sort)

        async def call() -> Document | None:
            return await coll.find_one_and_update(
                filter,
                update,
                projection=projection,
                sort=sort_spec,
                upsert=upsert,
                return_document=which,
                session=session,
            )

        return await self.run("find_one_and_update", call)

    async def bulk_write(
        self,
        collection: str,
        operations: Iterable[WriteOperation],
        *,
        ordered: bool = True,
        idempotent: bool = False,
    ) -> BulkWriteResult:
        """Run ``operations`` (PyMongo's ``InsertOne``, ``UpdateOne``, ``UpdateMany``,
        ``ReplaceOne``, ``DeleteOne``, ``DeleteMany``, re-exported here) in bulk.

        Returns a :class:`BulkWriteResult`; an operation the server refuses is a
        RecordError with its index in ``operations`` (a duplicate key has the CONFLICT
        code and the key), never an exception, and nothing is dropped silently:
        ``ordered=False`` runs every operation and reports exactly the failures;
        ``ordered=True`` stops at the first failure and reports the rest "not attempted".
        A write concern error raises (QueryError or ConnectorTimeoutError; transient when
        the server labels it retryable). Not retried unless ``idempotent=True`` (upserts
        and deletes by key are). The deadline is ``timeout`` plus 1 ms per operation.
        """
        return await self._bulk_write(
            collection, operations, ordered=ordered, idempotent=idempotent, operation="bulk_write"
        )

    async def _bulk_write(
        self,
        collection: str,
        operations: Iterable[WriteOperation],
        *,
        ordered: bool,
        idempotent: bool,
        operation: str,
    ) -> BulkWriteResult:
        coll = self.collection(collection)
        ops = list(operations)
        for index, op in enumerate(ops):
            if not isinstance(op, OPERATION_TYPES):
                raise InvalidRequestError(
                    f"operation #{index} is a {type(op).__name__}, not one of InsertOne, "
                    "UpdateOne, UpdateMany, ReplaceOne, DeleteOne, DeleteMany",
                    connector=self.name,
                )
        if not ops:
            return BulkWriteResult()
        session = self._session()

        async def call() -> BulkWriteResult:
            try:
                result = await coll.bulk_write(ops, ordered=ordered, session=session)
            except mongo_errors.BulkWriteError as exc:
                return self._bulk_failure(exc, ops, ordered)
            return from_result(result, len(ops))

        return await self.run(
            operation,
            call,
            idempotent=self._idempotent(idempotent),
            timeout=self._bulk_timeout(len(ops)),
        )

    # -- collections and indexes --------------------------------------------------------

    async def list_collections(self) -> list[str]:
        """The names of the database's collections (``system.`` ones left out), sorted."""

        async def call() -> list[str]:
            return await self.database.list_collection_names()

        names = await self.run("list_collections", call, idempotent=True)
        return sorted(n for n in names if collection_problem(n, self.config.database) is None)

    async def drop_collection(self, collection: str) -> None:
        """Drop ``collection`` and its indexes (nothing happens when it does not exist)."""
        self.collection(collection)

        async def call() -> None:
            await self.database.drop_collection(collection)

        await self.run("drop_collection", call, idempotent=True)

    async def ensure_stream(self, name: str, schema: Stream) -> SchemaChange:
        """Create collection ``name`` when it does not exist (a sync's sink, say). Documents
        take any fields, so nothing else changes: a field a source adds later is simply
        stored. InvalidRequestError for a bad name."""
        self.collection(name)
        if name in await self.list_collections():
            return SchemaChange()

        async def call() -> None:
            with contextlib.suppress(mongo_errors.CollectionInvalid):  # made meanwhile
                await self.database.create_collection(name)

        await self.run("create_collection", call, idempotent=True)
        return SchemaChange(created=True)

    async def delete_keys(self, collection: str, keys: Iterable[Mapping[str, Any]]) -> WriteResult:
        """Delete the documents whose ``_id`` (shown as ``config.id_field``) is that of one
        of ``keys`` (mappings holding it; whole records will do), with one
        ``delete_many``. A key that matches nothing is not an error; one without the id
        field is a RecordError and nothing is deleted (all or nothing). Retried on
        transient errors (deleting again deletes nothing more)."""
        shown = self.config.id_field
        ids: list[Any] = []
        errors: list[RecordError] = []
        for index, key in enumerate(keys):
            if shown in key:
                ids.append(key[shown])
            else:
                errors.append(
                    RecordError(
                        index=index,
                        message=f"the key lacks {shown!r}",
                        code=ErrorCode.INVALID_REQUEST,
                    )
                )
        if errors:
            return WriteResult(written=0, failed=len(ids) + len(errors), errors=tuple(errors))
        if ids:
            await self.delete_many(collection, {"_id": {"$in": ids}})
        return WriteResult(written=len(ids))

    async def create_index(
        self,
        collection: str,
        keys: str | Sequence[tuple[str, int | str]],
        *,
        name: str | None = None,
        unique: bool = False,
        sparse: bool = False,
        expire_after: float | None = None,
        partial_filter: Filter | None = None,
    ) -> str:
        """Create an index (idempotent for the same keys and options); its name.

        ``keys`` is a field name or ``[(field, 1 | -1 | "text" | ...), ...]`` for a
        compound index; ``unique``, ``sparse``, ``expire_after`` (TTL seconds, on a date
        field) and ``partial_filter`` are MongoDB's options. Raises ConflictError when
        existing documents break ``unique``, InvalidRequestError for options the server
        refuses (FerretDB 1.x: TTL and partial indexes)."""
        coll = self.collection(collection)
        if isinstance(keys, str):
            spec: list[tuple[str, int | str]] = [(keys, 1)]
        else:
            spec = [(str(field), direction) for field, direction in keys]
        if not spec:
            raise InvalidRequestError("an index needs at least one key", connector=self.name)
        options: dict[str, Any] = {}
        if name is not None:
            options["name"] = name
        if unique:
            options["unique"] = True
        if sparse:
            options["sparse"] = True
        if expire_after is not None:
            if isinstance(expire_after, bool) or expire_after < 0:
                raise InvalidRequestError("expire_after must be seconds >= 0", connector=self.name)
            options["expireAfterSeconds"] = int(expire_after)
        if partial_filter is not None:
            options["partialFilterExpression"] = dict(partial_filter)

        async def call() -> str:
            return await coll.create_index(spec, **options)

        return await self.run("create_index", call, idempotent=True)

    async def list_indexes(self, collection: str) -> list[IndexInfo]:
        """The indexes of ``collection`` (as the server lists them; MongoDB raises
        NotFoundError for a collection that does not exist, FerretDB lists none)."""
        coll = self.collection(collection)

        async def call() -> list[IndexInfo]:
            cursor = await coll.list_indexes()
            return [index_info(spec) for spec in await cursor.to_list()]

        return await self.run("list_indexes", call, idempotent=True)

    async def drop_index(self, collection: str, name: str) -> None:
        """Drop the index called ``name`` (NotFoundError when there is none)."""
        coll = self.collection(collection)
        if not isinstance(name, str) or not name or name == "*":
            raise InvalidRequestError(
                "name must be an index name ('*' is refused: drop them one by one)",
                connector=self.name,
            )

        async def call() -> None:
            await coll.drop_index(name)

        try:
            await self.run("drop_index", call)
        except ConnectorError as error:
            if error.details.get("code") == 27:  # IndexNotFound
                raise NotFoundError(
                    f"index {name!r} not found on collection {collection!r}",
                    connector=self.name,
                ) from error
            raise

    # -- transactions and change streams ------------------------------------------------

    def transaction(self) -> contextlib.AbstractAsyncContextManager[MongoTransaction]:
        """A multi-document transaction on a session, as an async context manager.

        Commits when the block ends, aborts when it raises. This task's operations on the
        connector inside the block run in the transaction and are never retried (run the
        whole block again on a transient error). Needs a replica set or sharded cluster
        (FerretDB 1.x has none). Nested blocks raise InvalidRequestError."""
        return self._transactions.transaction()

    def watch(
        self,
        collection: str | None = None,
        pipeline: Sequence[Mapping[str, Any]] | None = None,
        *,
        resume_after: Mapping[str, Any] | None = None,
        full_document: Literal["default", "updateLookup", "whenAvailable", "required"]
        | None = None,
        max_await: float = 1.0,
        batch_size: int | None = None,
    ) -> ChangeStream:
        """Changes of ``collection`` (None: the whole database) as a :class:`ChangeStream`
        of :class:`ChangeEvent`; ``resume_after`` (a token from a previous stream, also
        after a trip through JSON) continues just after that event. ``max_await`` bounds
        each wait on the server (seconds). Needs a replica set (not FerretDB 1.x)."""
        target: AsyncCollection[Document] | AsyncDatabase[Document] = (
            self.collection(collection) if collection is not None else self.database
        )
        stages = [dict(s) for s in pipeline or ()]
        size = self._batch_size(batch_size) if batch_size is not None else None

        async def open_stream(token: Mapping[str, Any] | None) -> AsyncChangeStream[Document]:
            return await target.watch(
                stages,
                full_document=full_document,
                resume_after=token,
                max_await_time_ms=max(1, int(max_await * 1000)),
                batch_size=size,
            )

        return ChangeStream(self.run, open_stream, resume_after)

    # -- capabilities: discover, read, sample, write --------------------------------------

    def _present(self, document: Document) -> Document:
        """A stored document as a record: ``_id`` under ``config.id_field``."""
        shown = self.config.id_field
        if shown == "_id" or "_id" not in document:
            return document
        # _id wins over a stored field of the same name as id_field.
        record = {shown: document["_id"]}
        record.update((k, v) for k, v in document.items() if k not in ("_id", shown))
        return record

    def _stored_field(self, field: str | None) -> str | None:
        return "_id" if field is not None and field == self.config.id_field else field

    async def _sample_documents(
        self, coll: AsyncCollection[Document], n: int, count: int | None
    ) -> list[Document]:
        if n == 0:
            return []
        if count is None or count > n:
            try:
                cursor = await coll.aggregate([{"$sample": {"size": n}}])
                return await cursor.to_list()
            except mongo_errors.OperationFailure as exc:
                if exc.code not in (238, 40324):  # NotImplemented (FerretDB), unknown stage
                    raise
        return await coll.find({}, limit=n).to_list()

    async def discover(self) -> Catalog:
        """The database's collections as :class:`CollectionStream`: fields and portable
        types inferred from up to ``config.discover_sample`` documents each (``$sample``;
        the first ones where the server lacks it), nested documents as OBJECT, fields
        seen with several types as JSON with the types in ``native_type``, ``_id`` (shown
        as ``config.id_field``) as the primary key, a suggested cursor field
        (``updated_at`` and similar names), the estimated count and the indexes."""
        names = await self.list_collections()
        streams: list[CollectionStream] = []
        for name in names:
            coll = self.database[name]

            async def describe(coll: AsyncCollection[Document] = coll) -> tuple[Any, ...]:
                count = await coll.estimated_document_count()
                documents = await self._sample_documents(coll, self.config.discover_sample, count)
                cursor = await coll.list_indexes()
                indexes = tuple(index_info(spec) for spec in await cursor.to_list())
                return count, documents, indexes

            count, documents, indexes = await self.run("discover", describe, idempotent=True)
            streams.append(
                infer_stream(
                    name,
                    documents,
                    database=self.config.database,
                    id_field=self.config.id_field,
                    estimated_count=count,
                    indexes=indexes,
                )
            )
        return Catalog(streams=tuple(streams))

    def read(
        self,
        collection: str,
        *,
        since: Any = None,
        cursor_field: str | None = None,
        limit: int | None = None,
        filter: Filter | None = None,
        projection: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
    ) -> DocumentReader:
        """Documents of ``collection`` in (``cursor_field``, ``_id``) order, from ONE
        cursor streamed ``batch_size`` documents per round trip (see
        :class:`DocumentReader`). ``since`` is:

        * None: from the start;
        * a Checkpoint (or a ``(cursor, key)`` tuple): strictly after that document, so
          nothing is skipped or repeated among documents sharing a cursor value; use
          ``reader.checkpoint`` of the previous run;
        * a plain value: documents whose cursor is >= it (at least once).

        Documents whose cursor is null or missing are not returned. Without
        ``cursor_field`` documents come in ``_id`` order. ``_id`` is shown (and given as
        ``cursor_field``) as ``config.id_field``. ``filter`` narrows the read;
        ``projection`` must keep the cursor and ``_id``. The first batch is retried on
        transient errors; a failure later raises, and the next read resumes from
        ``reader.checkpoint``. Raises NotFoundError when the collection does not exist,
        InvalidRequestError for a bad name or option.
        """
        coll = self.collection(collection)
        size = self._batch_size(batch_size)
        stored_cursor = self._stored_field(cursor_field)
        fields = dict(projection) if projection is not None else None
        session = self._session()

        async def open_batches(
            query: Document, sort: list[tuple[str, int]], limit: int
        ) -> AsyncIterator[list[Document]]:
            async def open_cursor() -> _Cursor:
                return coll.find(
                    query, fields, sort=sort, limit=limit, batch_size=size, session=session
                )

            # The documents of find()'s stream, in whole batches.
            batch: list[Document] = []
            found = False
            async for document in self._stream("read", open_cursor, size):
                found = True
                batch.append(document)
                if len(batch) >= size:
                    yield batch
                    batch = []
            if batch:
                yield batch
            if not found:  # nothing read: say so if the collection does not exist
                await self._require_collection(collection)

        async def find_example(field: str) -> Any:
            async def call() -> Any:
                found = await coll.find_one(
                    {field: {"$ne": None}}, {field: 1, "_id": 1}, session=session
                )
                return found.get(field) if found else None

            return await self.run("read", call, idempotent=self._idempotent(True))

        return DocumentReader(
            open_batches,
            find_example,
            since=since,
            cursor_field=stored_cursor,
            key_field="_id",
            limit=limit,
            batch_size=size,
            filter=filter,
            present=self._present if self.config.id_field != "_id" else None,
        )

    async def _require_collection(self, collection: str) -> None:
        names = await self.run(
            "read",
            lambda: self.database.list_collection_names(filter={"name": collection}),
            idempotent=self._idempotent(True),
        )
        if collection not in names:
            raise NotFoundError(
                f"collection {collection!r} not found in database {self.config.database!r}",
                connector=self.name,
            )

    async def sample(self, collection: str, n: int = 10) -> list[Record]:
        """Up to ``n`` documents of ``collection`` (``$sample``: random where the server
        has it), as records (``_id`` shown as ``config.id_field``). NotFoundError when the
        collection does not exist."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidRequestError("n must be an integer >= 0", connector=self.name)
        coll = self.collection(collection)

        async def call() -> list[Document]:
            return await self._sample_documents(coll, n, None)

        documents = await self.run("sample", call, idempotent=True)
        if not documents:
            await self._require_collection(collection)
        return [self._present(d) for d in documents]

    async def write(self, collection: str, records: Iterable[Record]) -> BulkWriteResult:
        """Upsert ``records`` into ``collection`` by ``_id`` (a record's
        ``config.id_field``) through one unordered :meth:`bulk_write`: a record with a key
        replaces the document with that key or is inserted; one without is inserted
        with a new ``_id``.

        A record that cannot be stored (a value BSON cannot hold, an integer over 64
        bits, a ``$``-prefixed or NUL-holding field name) is a RecordError with its
        index (SERIALIZATION), and so is one the server refuses; the others are written.
        Retried on transient errors when every record has a key (upserts are
        idempotent). ``written + failed == len(records)``.
        """
        coll_name = collection
        self.collection(coll_name)
        shown = self.config.id_field
        operations: list[WriteOperation] = []
        positions: list[int] = []
        errors: list[RecordError] = []
        every_keyed = True
        count = 0
        for index, record in enumerate(records):
            count += 1
            document = dict(record)
            if shown != "_id" and shown in document:
                document["_id"] = document.pop(shown)
            try:
                raw = RawBSONDocument(bson.encode(document, codec_options=_CODEC))
            except (BSONError, OverflowError, TypeError, ValueError) as exc:
                errors.append(
                    RecordError(
                        index=index,
                        message=self._scrub(
                            f"the record cannot be stored as BSON: {type(exc).__name__}: {exc}"
                        ),
                        code=ErrorCode.SERIALIZATION,
                        key=record.get(shown) if isinstance(record, Mapping) else None,
                    )
                )
                continue
            if "_id" in document:
                operations.append(ReplaceOne({"_id": document["_id"]}, raw, upsert=True))
            else:
                every_keyed = False
                operations.append(InsertOne(raw))
            positions.append(index)
        result = await self._bulk_write(
            coll_name, operations, ordered=False, idempotent=every_keyed, operation="write"
        )
        if not errors:
            return result
        # Indexes of the operations back to the records' own.
        moved = tuple(
            e.model_copy(update={"index": positions[e.index]})
            if 0 <= e.index < len(positions)
            else e
            for e in result.errors
        )
        merged = tuple(sorted((*errors, *moved), key=lambda e: e.index))
        # A new result (not a copy): the copy would inherit "inspected" from reading
        # the original's errors above, and a dropped result would not be warned about.
        return BulkWriteResult(
            written=count - len(merged),
            failed=len(merged),
            errors=merged,
            inserted=result.inserted,
            matched=result.matched,
            modified=result.modified,
            deleted=result.deleted,
            upserted=result.upserted,
            upserted_ids={positions[i]: v for i, v in result.upserted_ids.items()},
        )


def _check_filter(filter: object) -> None:
    if filter is not None and not isinstance(filter, Mapping):
        raise InvalidRequestError(
            f"filter must be a mapping such as {{'status': 'paid'}}, got {type(filter).__name__}",
            connector="mongo",
        )


def _check_count(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(f"{what} must be an integer >= 0", connector="mongo")


def _sort_list(sort: SortSpec) -> list[tuple[str, int]] | None:
    if sort is None:
        return None
    items = list(sort.items()) if isinstance(sort, Mapping) else list(sort)
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise InvalidRequestError(
                "sort must be [(field, 1 | -1), ...] or {field: 1 | -1}", connector="mongo"
            )
    return items


def _update_result(result: PyMongoUpdateResult) -> UpdateResult:
    return UpdateResult(
        matched=result.matched_count,
        modified=result.modified_count,
        upserted_id=result.upserted_id,
    )
