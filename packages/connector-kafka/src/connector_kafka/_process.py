"""The process() runner: a handler per message, partitions in parallel, each in order,
offsets committed only behind handled messages, poison messages to a dead-letter topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRebalanceListener  # type: ignore[import-untyped]

from connector_core import (
    ConnectorError,
    InvalidRequestError,
    RetryPolicy,
    SerializationError,
)
from connector_kafka._codec import MessageCodec
from connector_kafka._config import KafkaConfig
from connector_kafka._consumer import NewConsumer, Road
from connector_kafka._messages import KafkaMessage

K = TypeVar("K")
V = TypeVar("V")

Handler = Callable[[KafkaMessage[K, V]], Awaitable[object]]
"""An async function called once per message (again after a failure)."""
AttemptRunner = Callable[[Callable[[], Awaitable[object]], RetryPolicy], Awaitable[object]]
"""Runs one message's handler attempts on the connector's road, with a retry policy."""
SendDeadLetter = Callable[[str, Any, ConnectorError, int], Awaitable[object]]
"""Writes a record to a dead-letter topic: ``(topic, record, error, attempts)``."""

logger = logging.getLogger("connector.kafka")

DLQ_HEADER_PREFIX = "dlq."
"""Headers a dead-lettered message gets, besides its own: ``dlq.original.topic``,
``dlq.original.partition``, ``dlq.original.offset``, ``dlq.error.type``, ``dlq.error``
(the message, secrets masked) and ``dlq.attempts``."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Where messages go whose handler kept failing, and how hard to try first.

    The handler is called up to ``attempts`` times per message, waiting (full-jitter
    exponential backoff from ``initial_delay`` up to ``max_delay``) in between; then the
    message goes to ``topic`` (``{topic}`` is replaced by the message's topic), with
    headers naming where it came from, the error and the attempt count, and its offset
    is committed. A message that cannot be decoded goes there at once (attempts 0).
    """

    topic: str = "{topic}.dlq"
    attempts: int = 3
    initial_delay: float = 0.2
    max_delay: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            problems.append("attempts must be an integer")
        elif not 1 <= self.attempts <= 100:
            problems.append("attempts must be from 1 to 100")
        for name in ("initial_delay", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{name} must be a number of seconds")
            elif not 0 <= value <= 3600:
                problems.append(f"{name} must be from 0 to 3600 seconds")
        if not isinstance(self.topic, str) or not self.topic.replace("{topic}", "x"):
            problems.append("topic must be a topic name (with {topic} for the source topic)")
        if problems:
            raise InvalidRequestError(
                "invalid DeadLetter: " + "; ".join(problems), connector="kafka"
            )

    def topic_for(self, topic: str) -> str:
        """The dead-letter topic of messages of ``topic``."""
        return self.topic.replace("{topic}", topic)

    def retry_policy(self) -> RetryPolicy:
        """The attempts and backoff of one message's handler, as the road's policy."""
        return RetryPolicy(
            max_attempts=self.attempts,
            initial_delay=self.initial_delay,
            max_delay=self.max_delay,
            deadline=None,
        )


class HandlerFailedError(Exception):
    """Internal: a handler's exception on its way through the road (the connector
    translates it into a :class:`~connector_kafka.HandlerError`)."""

    def __init__(self, error: BaseException, timeout: float | None = None) -> None:
        self.error = error
        self.timeout = timeout
        super().__init__(f"{type(error).__name__}: {error}")


class _Partition:
    """One assigned partition's queue of fetched records and the task handling them."""

    __slots__ = ("committed", "done", "paused", "queue", "revoked", "task", "tp")

    def __init__(self, tp: Any, committed: int | None) -> None:
        self.tp = tp
        self.queue: deque[Any] = deque()
        self.task: asyncio.Task[None] | None = None
        self.done: int | None = None  # the next offset to commit: all before it handled
        self.committed = committed
        self.revoked = False
        self.paused = False


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: Processor[Any, Any]) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._owner.give_up(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._owner.take(list(assigned))


class Processor(Generic[K, V]):
    """Runs ``handler`` for every message of ``topics`` in group ``group_id`` until
    cancelled (see :meth:`KafkaConnector.process`)."""

    def __init__(
        self,
        topics: Sequence[str],
        handler: Handler[K, V],
        *,
        group_id: str,
        codec: MessageCodec[K, V],
        config: KafkaConfig,
        road: Road,
        attempts: AttemptRunner,
        send_dead_letter: SendDeadLetter,
        new_consumer: NewConsumer,
        concurrency: int,
        dead_letter: DeadLetter | None,
        handler_timeout: float | None,
    ) -> None:
        self.topics = tuple(topics)
        self.group_id = group_id
        self._handler = handler
        self._codec = codec
        self._config = config
        self._road = road
        self._attempts = attempts
        self._send_dead_letter = send_dead_letter
        self._new_consumer = new_consumer
        self._slots = asyncio.Semaphore(concurrency)
        self._dead_letter = dead_letter
        self._policy = dead_letter.retry_policy() if dead_letter else RetryPolicy.none()
        self._handler_timeout = handler_timeout
        self._consumer: Any = None
        self._partitions: dict[Any, _Partition] = {}
        self._known_commits: dict[Any, int] = {}
        self._failure: BaseException | None = None
        self._high_water = max(1, config.max_poll_records)
        self.assigned = asyncio.Event()
        """Set once the group has given this runner partitions (for tests and probes)."""

    # -- the poll loop ------------------------------------------------------------------------

    async def run(self) -> None:
        consumer = self._new_consumer(self.group_id)
        consumer.subscribe(list(self.topics), listener=_Listener(self))
        await self._road("process.start", consumer.start)
        self._consumer = consumer
        try:
            last_commit = time.monotonic()
            while True:
                self._raise_failure()
                batch = await self._road(
                    "process.fetch",
                    lambda: consumer.getmany(timeout_ms=200, max_records=self._high_water),
                )
                self._raise_failure()
                for tp, records in batch.items():
                    self._feed(tp, records)
                if time.monotonic() - last_commit >= self._config.commit_interval:
                    last_commit = time.monotonic()
                    await self._commit(list(self._partitions.values()))
        finally:
            await asyncio.shield(self._stop(consumer))

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _feed(self, tp: Any, records: list[Any]) -> None:
        state = self._partitions.get(tp)
        if state is None or state.revoked or not records:
            return  # fetched before a rebalance took the partition away
        floor = state.done if state.done is not None else state.committed
        if floor is not None:
            records = [r for r in records if r.offset >= floor]
        if state.queue:
            last = state.queue[-1].offset
            records = [r for r in records if r.offset > last]
        state.queue.extend(records)
        if len(state.queue) >= self._high_water and not state.paused:
            # Backpressure: this partition's handler is behind; stop fetching it (the
            # group membership stays, since the poll loop keeps polling).
            self._consumer.pause(tp)
            state.paused = True
        if state.queue and (state.task is None or state.task.done()):
            state.task = asyncio.get_running_loop().create_task(self._work(state))

    # -- one partition's worker ---------------------------------------------------------------

    async def _work(self, state: _Partition) -> None:
        try:
            while True:
                async with self._slots:
                    if state.revoked or not state.queue:
                        return
                    record = state.queue.popleft()
                    await self._handle(record)
                    state.done = record.offset + 1
                if state.paused and len(state.queue) <= self._high_water // 2 and not state.revoked:
                    self._consumer.resume(state.tp)
                    state.paused = False
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # fatal: the run stops, nothing after is committed
            if self._failure is None:
                self._failure = exc

    async def _handle(self, record: Any) -> None:
        try:
            message = self._codec.decode(record)
        except SerializationError as error:
            if self._dead_letter is None:
                raise
            await self._bury(record, error, 0)
            return
        handler = self._handler
        limit = self._handler_timeout

        async def attempt() -> object:
            try:
                if limit is None:
                    return await handler(message)
                async with asyncio.timeout(limit):
                    return await handler(message)
            except asyncio.CancelledError:
                raise
            except TimeoutError as exc:
                failure = HandlerFailedError(exc, limit)
            except Exception as exc:
                failure = HandlerFailedError(exc)
            raise failure

        try:
            await self._attempts(attempt, self._policy)
        except ConnectorError as error:
            if self._dead_letter is None:
                raise
            await self._bury(record, error, self._dead_letter.attempts)

    async def _bury(self, record: Any, error: ConnectorError, attempts: int) -> None:
        assert self._dead_letter is not None
        topic = self._dead_letter.topic_for(record.topic)
        logger.warning(
            "message %s/%d@%d goes to dead-letter topic %s after %d attempt(s): %s",
            record.topic,
            record.partition,
            record.offset,
            topic,
            attempts,
            error,
        )
        await self._send_dead_letter(topic, record, error, attempts)

    # -- rebalances and stopping -------------------------------------------------------------

    def take(self, assigned: list[Any]) -> None:
        for tp in assigned:
            if tp not in self._partitions:
                self._partitions[tp] = _Partition(tp, self._known_commits.get(tp))
        if assigned:
            self.assigned.set()

    async def give_up(self, revoked: list[Any]) -> None:
        """Finish (within ``drain_timeout``) or abandon the work of ``revoked``
        partitions, commit what was handled, and forget them."""
        states = [self._partitions[tp] for tp in revoked if tp in self._partitions]
        await self._drain(states)
        try:
            await self._commit(states)
        except Exception as exc:  # the listener must not fail the rebalance
            logger.warning("commit before a rebalance failed: %s", exc)
        for state in states:
            self._partitions.pop(state.tp, None)

    async def _drain(self, states: list[_Partition]) -> None:
        for state in states:
            state.revoked = True  # the worker takes no further record
            state.queue.clear()
        tasks = [s.task for s in states if s.task is not None and not s.task.done()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self._config.drain_timeout)
        if pending:
            logger.warning(
                "%d partition(s) still handling a message after drain_timeout=%ss: "
                "abandoned, another member will get those messages again",
                len(pending),
                self._config.drain_timeout,
            )
            for task in pending:
                task.cancel()
            await asyncio.wait(pending)

    async def _commit(self, states: list[_Partition]) -> None:
        consumer = self._consumer
        offsets = {s.tp: s.done for s in states if s.done is not None and s.done != s.committed}
        if not offsets or consumer is None:
            return
        await self._road("commit", lambda: consumer.commit(offsets))
        for state in states:
            if state.tp in offsets:
                state.committed = offsets[state.tp]
        self._known_commits.update(offsets)

    async def _stop(self, consumer: Any) -> None:
        states = list(self._partitions.values())
        try:
            await self._drain(states)
            await self._commit(states)
        except Exception as exc:
            logger.warning("final commit of group %s failed: %s", self.group_id, exc)
        finally:
            self._partitions.clear()
            self._consumer = None
            try:
                async with asyncio.timeout(self._config.connect_timeout):
                    await consumer.stop()
            except (Exception, TimeoutError) as exc:
                logger.debug("stopping the consumer raised %s", type(exc).__name__)
