"""Bounded reads of a topic: from a per-partition offsets checkpoint up to the end the
topic had when the read began."""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Self

from pydantic import BaseModel

from connector_core import Checkpoint, ConnectorTimeoutError, InvalidRequestError, Record
from connector_kafka._codec import MessageCodec
from connector_kafka._consumer import NewConsumer, Road, driver_partition
from connector_kafka._messages import KafkaMessage, timestamp_ms

PartitionsOf = Callable[[str], Awaitable[list[int]]]
"""The partition numbers of a topic (NotFoundError when it does not exist)."""


def as_record(message: KafkaMessage[Any, Any]) -> Record:
    """A message as a record: its value when that is a JSON object (or a pydantic
    model), else ``{"key": key, "value": value}``."""
    value = message.value
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping):
        return dict(value)
    return {"key": message.key, "value": value}


def checkpoint_offsets(since: Any) -> dict[int, int]:
    """The partition -> next offset mapping of a checkpoint given to ``read``:
    ``Checkpoint(cursor={"0": 42, ...})`` (keys and offsets may be strings, as JSON
    leaves them) or such a mapping itself. Raises InvalidRequestError otherwise."""
    cursor = since.cursor if isinstance(since, Checkpoint) else since
    if not isinstance(cursor, Mapping):
        raise InvalidRequestError(
            "a Kafka checkpoint's cursor maps partitions to the next offset to read "
            "(Checkpoint(cursor={'0': 42})); use the reader's .checkpoint",
            connector="kafka",
        )
    offsets: dict[int, int] = {}
    for key, value in cursor.items():
        problem: str | None
        try:
            partition, offset = _integer(key), _integer(value)
        except ValueError:
            problem = "a Kafka checkpoint maps partition numbers to offsets (integers >= 0)"
        else:
            problem = None
            offsets[partition] = offset
        if problem is not None:
            raise InvalidRequestError(problem, connector="kafka")
    return offsets


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not an integer")
    number = int(value) if isinstance(value, int | str) else None
    if number is None or number < 0:
        raise ValueError("not an integer >= 0")
    return number


class TopicReader:
    """An async iterator of the records of one topic, bounded by the end offsets taken
    when it starts; ``checkpoint`` is where the next read resumes (every partition's
    offset after the last record yielded, or the end once the read is complete).

    ``since``: None (from the start), a :class:`~connector_core.Checkpoint` from an
    earlier reader (strictly after it: exactly once across reads), or a timestamp (an
    aware datetime or epoch milliseconds: the messages at or after it, at least once).
    """

    def __init__(
        self,
        topic: str,
        *,
        since: Any,
        limit: int | None,
        codec: MessageCodec[Any, Any],
        road: Road,
        new_consumer: NewConsumer,
        partitions_of: PartitionsOf,
        stall_timeout: float,
        messages: bool = False,
    ) -> None:
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise InvalidRequestError("limit must be an integer >= 0", connector="kafka")
        self.topic = topic
        self._since = since
        self._limit = limit
        self._codec = codec
        self._road = road
        self._new_consumer = new_consumer
        self._partitions_of = partitions_of
        self._stall_timeout = stall_timeout
        self._messages = messages
        self._consumer: Any = None
        self._started = False
        self._closed = False
        self._ends: dict[int, int] = {}
        self._next: dict[int, int] = {}
        self._active: set[int] = set()
        self._buffer: deque[Any] = deque()
        self._yielded = 0
        self._records: AsyncGenerator[Any, None] | None = None

    @property
    def checkpoint(self) -> Checkpoint:
        """Where a later ``read(topic, since=reader.checkpoint)`` resumes; survives JSON."""
        return Checkpoint(cursor={str(p): o for p, o in sorted(self._next.items())})

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        if self._records is None:
            if self._closed:
                raise StopAsyncIteration
            # An async generator does the work: when a caller stops iterating early
            # (break) and drops the reader, asyncio closes the generator, whose
            # ``finally`` stops the consumer.
            self._records = self._read()
        return await self._records.__anext__()

    async def _read(self) -> AsyncGenerator[Any, None]:
        try:
            await self._start()
            while self._limit is None or self._yielded < self._limit:
                while not self._buffer:
                    if not self._active:
                        return
                    await self._fetch()
                record = self._buffer.popleft()
                self._next[record.partition] = record.offset + 1
                self._yielded += 1
                if self._ends.get(record.partition, 0) <= record.offset + 1:
                    self._active.discard(record.partition)
                # A message that cannot be decoded ends the read; the checkpoint is
                # already past it, so a read from the checkpoint goes on after it.
                message = self._codec.decode(record)
                yield message if self._messages else as_record(message)
        finally:
            await self._stop()

    async def _start(self) -> None:
        partitions = await self._partitions_of(self.topic)
        if self._limit == 0:
            self._next = {}
            return
        consumer = self._new_consumer(None)
        tps = [driver_partition((self.topic, p)) for p in partitions]
        consumer.assign(tps)
        await self._road("read.start", consumer.start)
        self._consumer = consumer
        try:
            ends = await self._road("read.offsets", lambda: consumer.end_offsets(tps))
            begins = await self._road("read.offsets", lambda: consumer.beginning_offsets(tps))
            starts = await self._starts(consumer, tps, begins, ends)
        except BaseException:
            await self._stop()
            raise
        for tp in tps:
            begin, end = int(begins[tp]), int(ends[tp])
            start = min(max(starts.get(tp.partition, begin), begin), end)
            self._ends[tp.partition] = end
            self._next[tp.partition] = start
            if start < end:
                consumer.seek(tp, start)
                self._active.add(tp.partition)
        paused = [tp for tp in tps if tp.partition not in self._active]
        if paused:
            consumer.pause(*paused)

    async def _starts(
        self, consumer: Any, tps: list[Any], begins: Mapping[Any, int], ends: Mapping[Any, int]
    ) -> dict[int, int]:
        since = self._since
        if since is None:
            return {tp.partition: int(begins[tp]) for tp in tps}
        if isinstance(since, dt.datetime | int | float) and not isinstance(since, bool):
            millis = timestamp_ms(since)
            found = await self._road(
                "read.offsets", lambda: consumer.offsets_for_times(dict.fromkeys(tps, millis))
            )
            return {
                tp.partition: int(found[tp].offset) if found.get(tp) is not None else int(ends[tp])
                for tp in tps
            }
        return checkpoint_offsets(since)

    async def _fetch(self) -> None:
        consumer = self._consumer
        started = time.monotonic()
        while True:
            active = [driver_partition((self.topic, p)) for p in sorted(self._active)]
            batch = await self._road(
                "read.fetch", functools.partial(consumer.getmany, *active, timeout_ms=200)
            )
            got = False
            for tp, records in batch.items():
                end = self._ends.get(tp.partition, 0)
                kept = [r for r in records if r.offset < end]
                if kept:
                    got = True
                    self._buffer.extend(kept)
            for tp in active:
                # Past the end without a record to show for it: the last offsets were
                # transaction markers (or aborted messages under read_committed).
                position = await self._road(
                    "read.position", functools.partial(consumer.position, tp)
                )
                if position >= self._ends[tp.partition] and not any(
                    r.partition == tp.partition for r in self._buffer
                ):
                    self._active.discard(tp.partition)
                    self._next[tp.partition] = max(
                        self._next.get(tp.partition, 0), self._ends[tp.partition]
                    )
            if got or not self._active:
                return
            if time.monotonic() - started > self._stall_timeout:
                raise ConnectorTimeoutError(
                    f"reading topic {self.topic!r} made no progress for {self._stall_timeout}s",
                    connector="kafka",
                )

    async def aclose(self) -> None:
        """Stop reading (the consumer is closed; ``checkpoint`` stays valid)."""
        records, self._records = self._records, None
        self._closed = True
        if records is not None:
            await records.aclose()
        await self._stop()

    async def _stop(self) -> None:
        self._closed = True
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
