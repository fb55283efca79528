"""KafkaConsumer: one member of a consumer group, as an async iterator of messages."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from aiokafka import ConsumerRebalanceListener  # type: ignore[import-untyped]
from aiokafka.structs import TopicPartition as DriverPartition  # type: ignore[import-untyped]

from connector_core import InvalidRequestError, NotConnectedError, SerializationError
from connector_kafka._codec import MessageCodec
from connector_kafka._config import KafkaConfig
from connector_kafka._messages import (
    KafkaMessage,
    PartitionLag,
    Timestamp,
    TopicPartition,
    timestamp_ms,
)
from connector_kafka._prebuilt import install as install_prebuilt

K = TypeVar("K")
V = TypeVar("V")

Road = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""Runs one driver call on the connector's road: ``road(operation, fn)``."""
NewConsumer = Callable[[str | None], Any]
"""Builds an (unstarted) aiokafka consumer for a group id."""

logger = logging.getLogger("connector.kafka")

_CHECK_EVERY = 64
"""Messages between two looks at the clock for a timed commit (time.monotonic() per
message would cost more than the rest of the iteration step)."""

PartitionLike = TopicPartition | tuple[str, int]


def driver_partition(tp: PartitionLike) -> Any:
    topic, partition = tp
    return DriverPartition(topic, partition)


def _ours(tp: Any) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: KafkaConsumer[Any, Any]) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._owner.partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._owner.partitions_assigned(set(assigned))


class KafkaConsumer(Generic[K, V]):
    """A member of a consumer group reading ``topics``: ``async for message in
    consumer`` yields :class:`KafkaMessage` in offset order within each partition, and
    ``async for batch in consumer.batches()`` lists of them, one fetch at a time (the
    fast way; see :meth:`batches`). A consumer is read one way or the other.

    Use it as ``async with kafka.consume(...) as consumer:`` so that it leaves the group
    when the block ends (or call :meth:`close`).

    Offsets (at least once):

    * ``auto_commit=True`` (the default): a message is done when the iteration moves on
      past it (the next message is asked for, or the block ends without an error). Done
      offsets are committed every ``commit_interval`` seconds, before this member gives
      partitions up in a rebalance (it waits up to ``drain_timeout`` for the message in
      hand), and on close. A message whose handling raised or was cancelled is not done,
      so another member (or the next run) gets it again.
    * ``auto_commit=False``: nothing is committed but by :meth:`commit`.

    A message that cannot be decoded raises SerializationError from the iteration (its
    ``details`` say where it is); iterating again goes on with the next one, and the bad
    message counts as done.
    """

    def __init__(
        self,
        topics: Sequence[str],
        *,
        group_id: str | None,
        codec: MessageCodec[K, V],
        config: KafkaConfig,
        road: Road,
        new_consumer: NewConsumer,
        auto_commit: bool = True,
        on_close: Callable[[KafkaConsumer[Any, Any]], None] | None = None,
    ) -> None:
        self.topics = tuple(topics)
        self.group_id = group_id
        self.auto_commit = auto_commit
        self._codec = codec
        self._config = config
        self._road = road
        self._new_consumer = new_consumer
        self._on_close = on_close
        self._consumer: Any = None
        # Whether the driver builds each KafkaMessage itself (bytes keys and values,
        # docs/decisions/0100): its records are then the messages.
        self._prebuilt = False
        self._closed = False
        self._start_lock = asyncio.Lock()
        # Fetched records: the chunk being yielded (one partition's records of a fetch,
        # from index _at on), the chunks after it, and paused partitions' held records.
        self._chunk: list[Any] = []
        self._chunk_tp: Any = None
        self._at = 0
        self._chunks: deque[tuple[Any, list[Any]]] = deque()
        self._held: dict[Any, list[Any]] = {}
        self._owned: set[Any] = set()
        self._revoking: set[Any] = set()
        self._paused: set[Any] = set()
        # The message in the caller's hands (yielded, not done yet).
        self._in_hand = False
        self._hand_tp: Any = None
        self._hand_offset = 0
        self._finish_waiter: asyncio.Future[None] | None = None
        # The batch in the caller's hands (batches()): partition -> (first offset, offset
        # after its last message).
        self._hand_batch: dict[Any, tuple[int, int]] = {}
        self._mode: str | None = None  # "messages" or "batches", fixed by the first use
        self._done: dict[Any, int] = {}  # next offset to commit, after finished messages
        self._committed: dict[Any, int] = {}
        self._last_commit = time.monotonic()
        self._countdown = _CHECK_EVERY

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the group (or, without a group id, read from the committed-less start).
        Idempotent; the first iteration calls it."""
        async with self._start_lock:
            if self._consumer is not None:
                return
            if self._closed:
                raise NotConnectedError("this consumer is closed", connector="kafka")
            consumer = self._new_consumer(self.group_id)
            if self.group_id is not None:
                consumer.subscribe(list(self.topics), listener=_Listener(self))
            else:
                consumer.subscribe(list(self.topics))
            try:
                await self._road("consume.start", consumer.start)
            except BaseException:
                await asyncio.shield(_stop_quietly(consumer, self._config.connect_timeout))
                raise
            self._prebuilt = self._codec.plain and install_prebuilt(consumer)
            self._consumer = consumer

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Leaving the block normally finishes the message in hand; an error or a
        # cancellation leaves it undone, to be delivered again.
        await asyncio.shield(self.close(finished=exc_type is None))

    async def close(self, *, finished: bool = True) -> None:
        """Commit what is done (with ``auto_commit``), leave the group and stop.
        ``finished=False``: the message in hand is not done. Idempotent."""
        if self._closed:
            return
        self._closed = True
        consumer, self._consumer = self._consumer, None
        try:
            if consumer is not None:
                if finished:
                    self._finish_current()
                if self.auto_commit and self.group_id is not None:
                    try:
                        await self._commit_done(consumer, self._owned)
                    except Exception as exc:  # logged: closing must not fail
                        logger.warning("final commit of group %s failed: %s", self.group_id, exc)
                await _stop_quietly(consumer, self._config.connect_timeout)
        finally:
            if self._on_close is not None:
                self._on_close(self)

    # -- iteration --------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        self._use("messages")
        return self

    def _use(self, mode: str) -> None:
        if self._mode is None:
            self._mode = mode
        elif self._mode != mode:
            raise InvalidRequestError(
                f"this consumer is read by {self._mode}: iterate it either message by message "
                "or with batches(), not both",
                connector="kafka",
            )

    async def __anext__(self) -> KafkaMessage[K, V]:
        # The hot path of consuming: once per message, so kept to a few attribute
        # operations (docs/decisions/0069).
        consumer = self._consumer
        if consumer is None:
            await self.start()
            consumer = self._consumer
            if consumer is None:  # closed meanwhile
                raise StopAsyncIteration
        if self._in_hand:  # the previous message is done (inlined _finish_current)
            self._in_hand = False
            self._done[self._hand_tp] = self._hand_offset + 1
            if self._finish_waiter is not None:
                self._finish_current()
        if self._countdown <= 0:
            self._countdown = _CHECK_EVERY
            if self.auto_commit and self._commit_due():
                await self._commit_done(consumer, self._owned)
        at = self._at
        chunk = self._chunk
        if at < len(chunk):
            self._at = at + 1
            record = chunk[at]
        else:
            record = await self._refill(consumer)
        self._in_hand = True
        self._hand_tp = self._chunk_tp
        self._hand_offset = record.offset
        return record if self._prebuilt else self._codec.decode(record)

    async def _refill(self, consumer: Any) -> Any:
        """The next buffered record, fetching (and committing when due) as needed."""
        while True:
            record = self._next_chunk()
            if record is not None:
                return record
            batch = await self._road(
                "consume.fetch",
                lambda: consumer.getmany(timeout_ms=500, max_records=self._config.max_poll_records),
            )
            if self._consumer is None:
                raise StopAsyncIteration
            self._buffer(batch)
            if self.auto_commit and self._commit_due():
                await self._commit_done(consumer, self._owned)

    # -- batches ----------------------------------------------------------------------------

    def batches(
        self, *, max_records: int | None = None, timeout: float | None = None
    ) -> ConsumerBatches[K, V]:
        """``async for batch in consumer.batches():`` each batch a list of up to
        ``max_records`` (default ``config.max_poll_records``) :class:`KafkaMessage`, as
        one fetch brought them: in offset order within each partition, a partition's
        messages together. The fast way to consume (docs/decisions/0076).

        ``timeout=None`` (the default) waits for messages however long it takes;
        ``timeout=seconds`` yields an empty list when none came within it.

        Offsets, with ``auto_commit`` (at least once): a batch is done, all of it, when
        the next batch is asked for (or the ``async with`` block ends without an error);
        done offsets are committed as the iterator's are (every ``commit_interval``,
        before giving partitions up in a rebalance, on close). A batch whose handling
        raised or was cancelled is not done: its messages come again. In a rebalance
        this member waits up to ``drain_timeout`` for the batch in hand if it holds
        messages of a revoked partition; after that, those messages are abandoned (not
        committed; another member gets them) and the rest of the batch still counts.
        ``await consumer.commit(message)`` commits up to a message inside the batch;
        ``commit()`` commits the whole batch in hand.

        A record that cannot be decoded ends its batch before it; the next step raises
        SerializationError for it (``details`` say where), and the one after goes on
        past it. A consumer is read either message by message or by batches, not both
        (InvalidRequestError)."""
        if max_records is None:
            max_records = self._config.max_poll_records
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
            raise InvalidRequestError("max_records must be an integer >= 1", connector="kafka")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
        ):
            raise InvalidRequestError(
                "timeout must be None or a number of seconds >= 0", connector="kafka"
            )
        self._use("batches")
        return ConsumerBatches(self, max_records, timeout)

    async def _next_batch(
        self, max_records: int, timeout: float | None
    ) -> list[KafkaMessage[K, V]]:
        consumer = self._consumer
        if consumer is None:
            await self.start()
            consumer = self._consumer
            if consumer is None:  # closed meanwhile
                raise StopAsyncIteration
        self._finish_current()  # the batch handed out before is done
        if self.auto_commit and self._commit_due():
            await self._commit_done(consumer, self._owned)
        deadline = None if timeout is None else time.monotonic() + timeout
        fetched = False
        while True:
            taken = self._take(max_records)
            if taken:
                return self._hand_out(taken)
            if deadline is None:
                wait_ms = 500
            else:
                left = deadline - time.monotonic()
                if fetched and left <= 0:
                    return []
                wait_ms = max(0, round(left * 1000))
            batch = await self._road(
                "consume.fetch",
                functools.partial(consumer.getmany, timeout_ms=wait_ms, max_records=max_records),
            )
            fetched = True
            if self._consumer is None:
                raise StopAsyncIteration
            self._buffer(batch)
            if self.auto_commit and self._commit_due():
                await self._commit_done(consumer, self._owned)

    def _take(self, room: int) -> list[tuple[Any, list[Any]]]:
        """Up to ``room`` fetched records, as (partition, records) chunks in order."""
        taken: list[tuple[Any, list[Any]]] = []
        chunks = self._chunks
        while chunks and room > 0:
            tp, records = chunks.popleft()
            if tp in self._revoking:
                continue
            if tp in self._paused:
                self._held.setdefault(tp, []).extend(records)
                continue
            if len(records) > room:
                chunks.appendleft((tp, records[room:]))
                records = records[:room]
            taken.append((tp, records))
            room -= len(records)
        return taken

    def _hand_out(self, taken: list[tuple[Any, list[Any]]]) -> list[KafkaMessage[K, V]]:
        """Decode ``taken`` into the batch now in the caller's hands."""
        if self._prebuilt:  # the records are the messages: nothing to decode or to fail
            self._hand_batch = {
                tp: (records[0].offset, records[-1].offset + 1) for tp, records in taken
            }
            if len(taken) == 1:
                return taken[0][1]
            return [message for _, records in taken for message in records]
        decode_all = self._codec.decode_all  # empties each list it decodes
        if len(taken) == 1:  # the common case: one partition's records
            tp, records = taken[0]
            span = (records[0].offset, records[-1].offset + 1)
            with contextlib.suppress(SerializationError):  # else: the general path below
                messages = decode_all(records)
                self._hand_batch = {tp: span}
                return messages
        messages = []
        hand: dict[Any, tuple[int, int]] = {}
        for at, (tp, records) in enumerate(taken):
            span = (records[0].offset, records[-1].offset + 1)
            try:
                messages += decode_all(records)
            except SerializationError as exc:
                bad = int(exc.details.pop("index"))
                if bad:
                    hand[tp] = (records[0].offset, records[bad - 1].offset + 1)
                    messages += decode_all(records[:bad])
                if messages:  # hand out what came before it; the next step raises
                    rest = [(tp, records[bad:]), *taken[at + 1 :]]
                    self._hand_batch = hand
                else:  # the bad record is in hand: done when the next batch is asked for
                    offset = records[0].offset
                    rest = [(tp, records[1:]), *taken[at + 1 :]]
                    self._hand_batch = {tp: (offset, offset + 1)}
                self._chunks.extendleft(reversed([c for c in rest if c[1]]))
                if messages:
                    return messages
                raise
            hand[tp] = span
        self._hand_batch = hand
        return messages

    def _buffer(self, batch: dict[Any, list[Any]]) -> None:
        for tp, records in batch.items():
            if not records or tp in self._revoking:
                continue
            if self.group_id is not None and tp not in self._owned:
                continue
            if tp in self._paused:
                self._held.setdefault(tp, []).extend(records)
            else:
                self._chunks.append((tp, records))

    def _next_chunk(self) -> Any:
        """Start yielding the next chunk; its first record (None when none is left)."""
        while self._chunks:
            tp, records = self._chunks.popleft()
            if tp in self._revoking:
                continue
            if tp in self._paused:
                self._held.setdefault(tp, []).extend(records)
                continue
            self._chunk_tp, self._chunk, self._at = tp, records, 1
            return records[0]
        self._chunk, self._at = [], 0
        return None

    def _finish_current(self) -> None:
        if self._in_hand:
            self._in_hand = False
            self._done[self._hand_tp] = self._hand_offset + 1
        if self._hand_batch:
            done = self._done
            for tp, (_, after) in self._hand_batch.items():
                done[tp] = max(done.get(tp, 0), after)
            self._hand_batch = {}
        waiter = self._finish_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _first_buffered(self, tp: Any) -> int | None:
        if self._chunk_tp == tp and self._at < len(self._chunk):
            return int(self._chunk[self._at].offset)
        for chunk_tp, records in self._chunks:
            if chunk_tp == tp:
                return int(records[0].offset)
        held = self._held.get(tp)
        return int(held[0].offset) if held else None

    def _forget_done(self, partitions: Iterable[Any]) -> None:
        for tp in partitions:
            self._done.pop(tp, None)

    # -- offsets ----------------------------------------------------------------------------

    def _commit_due(self) -> bool:
        return time.monotonic() - self._last_commit >= self._config.commit_interval

    def _pending(self, partitions: Iterable[Any]) -> dict[Any, int]:
        return {
            tp: self._done[tp]
            for tp in partitions
            if tp in self._done and self._done[tp] != self._committed.get(tp)
        }

    async def _commit_done(self, consumer: Any, partitions: Iterable[Any]) -> None:
        self._last_commit = time.monotonic()
        offsets = self._pending(partitions)
        if offsets:
            await self._road("commit", lambda: consumer.commit(offsets))
            self._committed.update(offsets)

    async def commit(self, message: KafkaMessage[Any, Any] | None = None) -> None:
        """Commit, for every partition, the offset after the last message yielded (the
        one in hand included); or, given ``message``, the offset after it in its
        partition. Raises NotConnectedError before the first message, InvalidRequestError
        without a group id, ConflictError when the group moved the partition away."""
        consumer = self._require_started()
        if self.group_id is None:
            raise InvalidRequestError("commit() needs a group id", connector="kafka")
        if message is None:
            self._finish_current()
            await self._commit_done(consumer, self._owned)
            return
        tp = DriverPartition(message.topic, message.partition)
        offsets = {tp: message.offset + 1}
        await self._road("commit", lambda: consumer.commit(offsets))
        self._committed.update(offsets)
        self._done[tp] = max(self._done.get(tp, 0), message.offset + 1)

    def positions(self) -> dict[TopicPartition, int]:
        """For each partition read so far, the offset after the last message yielded
        (the one in hand included): what :meth:`commit` would commit, or what a
        transaction's ``commit_offsets`` sends."""
        offsets = {_ours(tp): offset for tp, offset in self._done.items()}
        if self._in_hand:
            offsets[_ours(self._hand_tp)] = self._hand_offset + 1
        for tp, (_, after) in self._hand_batch.items():
            offsets[_ours(tp)] = max(offsets.get(_ours(tp), 0), after)
        return offsets

    def offsets_committed(self, offsets: dict[TopicPartition, int]) -> None:
        """Record that ``offsets`` were committed elsewhere (by a transaction)."""
        for tp, offset in offsets.items():
            key = driver_partition(tp)
            self._committed[key] = offset
            self._done[key] = max(self._done.get(key, 0), offset)

    # -- rebalances (called by the driver's coordinator task) -------------------------------

    async def partitions_revoked(self, revoked: set[Any]) -> None:
        self._revoking |= revoked
        # Nothing more of these partitions is handed out, not even what is left of the
        # chunk being served: the caller moving on must not pick up their next record.
        self._drop_fetched(revoked)
        try:
            if self.auto_commit and self._holds(revoked):
                waiter = self._finish_waiter = asyncio.get_running_loop().create_future()
                try:
                    async with asyncio.timeout(self._config.drain_timeout):
                        await waiter
                except TimeoutError:
                    # Abandoned: not done, not to be committed.
                    names = ", ".join(f"{tp.topic}/{tp.partition}" for tp in self._held_of(revoked))
                    self._forget_in_hand(revoked)
                    logger.warning(
                        "messages of %s were still being handled when the group took the "
                        "partition away; another member will get them again",
                        names,
                    )
                finally:
                    self._finish_waiter = None
            else:
                self._forget_in_hand(revoked)
            self._forget_buffered(revoked)
            consumer = self._consumer
            if self.auto_commit and consumer is not None:
                try:
                    await self._commit_done(consumer, revoked)
                except Exception as exc:  # the listener must not fail the rebalance
                    logger.warning("commit before a rebalance failed: %s", exc)
        finally:
            self._owned -= revoked
            for tp in revoked:
                self._done.pop(tp, None)
                self._committed.pop(tp, None)
                self._paused.discard(tp)
            self._revoking -= revoked

    def _held_of(self, partitions: set[Any]) -> list[Any]:
        """The partitions among ``partitions`` whose messages the caller holds now."""
        held = [tp for tp in self._hand_batch if tp in partitions]
        if self._in_hand and self._hand_tp in partitions:
            held.append(self._hand_tp)
        return held

    def _holds(self, partitions: set[Any]) -> bool:
        return bool(self._held_of(partitions))

    def _forget_in_hand(self, partitions: set[Any]) -> None:
        """The messages in hand of ``partitions`` will never count as done."""
        if self._in_hand and self._hand_tp in partitions:
            self._in_hand = False
        if self._hand_batch:
            for tp in partitions:
                self._hand_batch.pop(tp, None)

    def partitions_assigned(self, assigned: set[Any]) -> None:
        self._owned = set(assigned)
        self._paused &= self._owned

    # -- positions, flow and lag ------------------------------------------------------------

    def _require_started(self) -> Any:
        if self._consumer is None:
            raise NotConnectedError(
                "the consumer has not started: iterate it or use 'async with' first",
                connector="kafka",
            )
        return self._consumer

    def assignment(self) -> set[TopicPartition]:
        """The partitions this member reads now."""
        consumer = self._require_started()
        return {_ours(tp) for tp in consumer.assignment()}

    def _assigned(self, partitions: Sequence[PartitionLike]) -> list[Any]:
        consumer = self._require_started()
        mine = consumer.assignment()
        if not partitions:
            return list(mine)
        chosen = [driver_partition(tp) for tp in partitions]
        missing = [tp for tp in chosen if tp not in mine]
        if missing:
            names = ", ".join(f"{tp.topic}/{tp.partition}" for tp in missing)
            raise InvalidRequestError(f"not assigned to this consumer: {names}", connector="kafka")
        return chosen

    def _forget_buffered(self, partitions: Iterable[Any]) -> None:
        """Drop what was fetched of ``partitions`` (and the message in hand, if of one)."""
        dropped = set(partitions)
        self._drop_fetched(dropped)
        self._forget_in_hand(dropped)

    def _drop_fetched(self, partitions: set[Any]) -> None:
        if self._chunk_tp in partitions:
            self._chunk, self._at = [], 0
        self._chunks = deque(c for c in self._chunks if c[0] not in partitions)
        for tp in partitions:
            self._held.pop(tp, None)

    def _held_back(self, partitions: Iterable[Any]) -> None:
        """Move what was fetched of ``partitions`` aside until they are resumed."""
        chosen = set(partitions)
        if self._chunk_tp in chosen and self._at < len(self._chunk):
            self._held.setdefault(self._chunk_tp, []).extend(self._chunk[self._at :])
            self._chunk, self._at = [], 0
        kept: deque[tuple[Any, list[Any]]] = deque()
        for tp, records in self._chunks:
            if tp in chosen:
                self._held.setdefault(tp, []).extend(records)
            else:
                kept.append((tp, records))
        self._chunks = kept

    def seek(self, partition: PartitionLike, offset: int) -> None:
        """Read ``partition`` from ``offset`` on (messages already fetched are dropped)."""
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidRequestError("offset must be an integer >= 0", connector="kafka")
        (tp,) = self._assigned([partition])
        self._forget_buffered([tp])
        self._done.pop(tp, None)
        self._require_started().seek(tp, offset)

    async def seek_to_beginning(self, *partitions: PartitionLike) -> None:
        """Read the given partitions (default: all assigned) from their first message."""
        chosen = self._assigned(partitions)
        self._forget_buffered(chosen)
        self._forget_done(chosen)
        consumer = self._require_started()
        await self._road("consume.seek", lambda: consumer.seek_to_beginning(*chosen))

    async def seek_to_end(self, *partitions: PartitionLike) -> None:
        """Skip to the end of the given partitions (default: all assigned)."""
        chosen = self._assigned(partitions)
        self._forget_buffered(chosen)
        self._forget_done(chosen)
        consumer = self._require_started()
        await self._road("consume.seek", lambda: consumer.seek_to_end(*chosen))

    async def seek_to_timestamp(self, when: Timestamp, *partitions: PartitionLike) -> None:
        """Read the given partitions (default: all assigned) from their first message
        whose timestamp is at or after ``when`` (an aware datetime or epoch
        milliseconds); a partition with none is read from its end."""
        millis = timestamp_ms(when)
        chosen = self._assigned(partitions)
        consumer = self._require_started()
        found = await self._road(
            "consume.seek", lambda: consumer.offsets_for_times(dict.fromkeys(chosen, millis))
        )
        self._forget_buffered(chosen)
        self._forget_done(chosen)
        past_end = []
        for tp in chosen:
            hit = found.get(tp)
            if hit is None:
                past_end.append(tp)
            else:
                consumer.seek(tp, hit.offset)
        if past_end:
            await self._road("consume.seek", lambda: consumer.seek_to_end(*past_end))

    def pause(self, *partitions: PartitionLike) -> None:
        """Stop fetching (and yielding) the given partitions (default: all assigned)
        until :meth:`resume`: backpressure without leaving the group."""
        chosen = self._assigned(partitions)
        self._require_started().pause(*chosen)
        self._paused.update(chosen)
        self._held_back(chosen)

    def resume(self, *partitions: PartitionLike) -> None:
        """Fetch and yield the given paused partitions (default: all) again."""
        consumer = self._require_started()
        chosen = self._assigned(partitions) if partitions else list(self._paused)
        consumer.resume(*chosen)
        self._paused.difference_update(chosen)
        for tp in chosen:
            held = self._held.pop(tp, None)
            if held:  # before anything fetched later for it
                self._chunks.appendleft((tp, held))

    def paused(self) -> set[TopicPartition]:
        """The partitions paused now."""
        return {_ours(tp) for tp in self._paused}

    async def lag(self) -> list[PartitionLag]:
        """For each assigned partition: the offset of the next message this consumer
        yields, the end of the partition, and how many messages lie between."""
        consumer = self._require_started()
        assigned = sorted(consumer.assignment())
        if not assigned:
            return []
        ends = await self._road("consume.lag", lambda: consumer.end_offsets(assigned))
        lags = []
        for tp in assigned:
            buffered = self._first_buffered(tp)
            if self._in_hand and self._hand_tp == tp:
                position = self._hand_offset
            elif tp in self._hand_batch:
                position = self._hand_batch[tp][0]
            elif buffered is not None:
                position = buffered
            else:
                position = await self._road("consume.lag", functools.partial(consumer.position, tp))
            end = int(ends[tp])
            lags.append(PartitionLag(tp.topic, tp.partition, position, end, max(0, end - position)))
        return lags


class ConsumerBatches(Generic[K, V]):
    """What :meth:`KafkaConsumer.batches` returns: an async iterator of lists of
    messages (``async for batch in consumer.batches(): ...``)."""

    __slots__ = ("_consumer", "_max_records", "_timeout")

    def __init__(self, consumer: KafkaConsumer[K, V], max_records: int, timeout: float | None):
        self._consumer = consumer
        self._max_records = max_records
        self._timeout = timeout

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[KafkaMessage[K, V]]:
        return await self._consumer._next_batch(self._max_records, self._timeout)


async def _stop_quietly(consumer: Any, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            await consumer.stop()
    except (Exception, TimeoutError) as exc:
        logger.debug("stopping a consumer raised %s", type(exc).__name__)
