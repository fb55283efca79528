"""Change streams: events of a collection (or the database) as an async iterator, with a
resume token that survives JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from pymongo.asynchronous.change_stream import AsyncChangeStream

from connector_mongo._values import from_json_safe, to_json_safe

Document = dict[str, Any]
Road = Callable[..., Awaitable[Any]]
OpenStream = Callable[[Mapping[str, Any] | None], Awaitable[AsyncChangeStream[Document]]]


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One change: ``operation`` (``insert``, ``update``, ``replace``, ``delete``, ...),
    the ``document_key`` (``{"_id": ...}``), the ``full_document`` when the server sent
    it, and the ``resume_token`` to resume just after this event (JSON-safe)."""

    operation: str
    document_key: Document | None
    full_document: Document | None
    resume_token: Document
    collection: str | None = None
    raw: Document = field(default_factory=dict, repr=False)


class ChangeStream(AsyncIterator[ChangeEvent]):
    """What ``MongoConnector.watch()`` returns: change events, in order, waiting for the
    next one. ``resume_token`` is the position after the last event handed out (JSON-safe:
    store it, pass it as ``watch(resume_after=...)`` to continue). Each round trip runs on
    the connector's road; opening is retried on transient errors, and PyMongo resumes
    the stream by itself after a resumable error (a failover, a lost connection).
    ``async with`` (or :meth:`close`) closes the server's cursor."""

    def __init__(self, road: Road, open_stream: OpenStream, resume_after: Any) -> None:
        self._road = road
        self._open_stream = open_stream
        self.resume_token: Document | None = (
            from_json_safe(resume_after) if resume_after is not None else None
        )
        self._stream: AsyncChangeStream[Document] | None = None
        self._closed = False

    async def _open(self) -> AsyncChangeStream[Document]:
        token = self.resume_token

        async def call() -> AsyncChangeStream[Document]:
            return await self._open_stream(token)

        stream: AsyncChangeStream[Document] = await self._road("watch", call, idempotent=True)
        self._stream = stream
        return stream

    def __aiter__(self) -> ChangeStream:
        return self

    async def __anext__(self) -> ChangeEvent:
        if self._closed:
            raise StopAsyncIteration
        stream = self._stream or await self._open()
        while True:
            # try_next() makes one getMore (waiting up to max_await_time): each round trip
            # fits the road's timeout, however long the stream stays quiet.
            change: Document | None = await self._road("watch", stream.try_next, retry=False)
            if change is not None:
                break
            if not stream.alive:
                self._closed = True
                raise StopAsyncIteration
        token = to_json_safe(change["_id"])
        self.resume_token = token
        namespace = change.get("ns") or {}
        return ChangeEvent(
            operation=str(change.get("operationType", "")),
            document_key=change.get("documentKey"),
            full_document=change.get("fullDocument"),
            resume_token=token,
            collection=namespace.get("coll"),
            raw=change,
        )

    async def close(self) -> None:
        """Close the server's cursor (idempotent)."""
        self._closed = True
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
