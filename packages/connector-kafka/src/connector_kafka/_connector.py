"""KafkaConnector: aiokafka behind connector_core's lifecycle and operation road."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any, ClassVar, TypeVar, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from aiokafka.conn import create_conn  # type: ignore[import-untyped]
from aiokafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]

from connector_core import (
    USE_DEFAULT,
    BaseConnector,
    Catalog,
    ConflictError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    DriverLogScrubber,
    ErrorCode,
    InvalidRequestError,
    NotConnectedError,
    NotFoundError,
    Record,
    RecordError,
    RetryPolicy,
    SchemaChange,
    SerializationError,
    Stream,
    UseDefault,
    WriteResult,
    scrub_secrets,
)
from connector_kafka import _admin
from connector_kafka._admin import TopicDescription
from connector_kafka._codec import MessageCodec, is_plain_bytes
from connector_kafka._config import KafkaConfig
from connector_kafka._consumer import KafkaConsumer, driver_partition
from connector_kafka._discover import TopicStream, infer_fields, infer_key, objects
from connector_kafka._errors import HandlerError, translate_error
from connector_kafka._messages import (
    DeliveryReport,
    Headers,
    KafkaMessage,
    OutgoingMessage,
    PartitionLag,
    Timestamp,
    TopicPartition,
    encode_headers,
    from_ms,
    timestamp_ms,
)
from connector_kafka._process import DeadLetter, Handler, HandlerFailedError, Processor
from connector_kafka._read import TopicReader
from connector_kafka._serializers import (
    BytesSerializer,
    Serializer,
    StringSerializer,
    is_json,
    serializer_for,
)
from connector_kafka._transaction import CURRENT, KafkaTransaction

try:
    __version__ = _version("connector-kafka")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

T = TypeVar("T")
logger = logging.getLogger("connector.kafka")

_DEFAULT_DEAD_LETTER = DeadLetter()
_Encoded = tuple[
    int, bytes | None, bytes | None, list[tuple[str, bytes]] | None, int | None, int | None
]
"""One message ready for the driver: (index, key, value, headers, partition, timestamp)."""
# Errors of one message's send() that say nothing about the next message's.
_PER_MESSAGE = (kafka_errors.MessageSizeTooLargeError,)
# How each kind of driver call of the helpers takes the road: (idempotent, retry, timeout).
_FETCH = "fetch"


# aiokafka logs every request at DEBUG, SASL ones included: its records are scrubbed.
_DRIVER_LOGS = DriverLogScrubber("aiokafka")


class KafkaConnector(BaseConnector[KafkaConfig]):
    """A Kafka connector on aiokafka: an idempotent (or transactional) producer, consumer
    groups with at-least-once delivery, dead-letter topics, admin calls and bounded reads.

    Every driver call runs on :meth:`BaseConnector.run`. The connector never resends a
    message and never re-creates its clients: the idempotent producer retries sends
    itself without writing duplicates, and aiokafka reconnects to brokers by itself.
    Errors are connector_core's: ConnectionFailedError (broker unreachable, transient),
    AuthenticationError (SASL refused), PermissionDeniedError (topic, group, cluster or
    transactional id not authorized), NotFoundError (unknown topic), InvalidRequestError
    (message too large, invalid topic, misuse), ConflictError (topic exists, producer
    fenced, group rebalanced), ConnectorTimeoutError (no answer within the request
    timeout), SerializationError (a key or value its serializer refused).

    ``key_serializer`` and ``value_serializer`` (any :class:`Serializer`) replace the
    config's ``key_format`` and ``value_format``; each call may override them.
    """

    name: ClassVar[str] = "kafka"
    version: ClassVar[str] = __version__
    config_class: ClassVar[type[KafkaConfig]] = KafkaConfig

    def __init__(
        self,
        config: KafkaConfig,
        *,
        key_serializer: Serializer[Any] | None = None,
        value_serializer: Serializer[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(config, **kwargs)
        self.key_serializer: Serializer[Any] = key_serializer or serializer_for(config.key_format)
        self.value_serializer: Serializer[Any] = value_serializer or serializer_for(
            config.value_format
        )
        self._codec: MessageCodec[Any, Any] = MessageCodec(
            self.key_serializer, self.value_serializer
        )
        self._producer: Any = None
        self._admin: Any = None
        self._transaction_lock = asyncio.Lock()
        self._consumers: weakref.WeakSet[KafkaConsumer[Any, Any]] = weakref.WeakSet()
        # Topic -> the primary key of the stream last given to ensure_stream (a sync's
        # sink): write() keys its messages by it.
        self._stream_keys: dict[str, tuple[str, ...]] = {}
        _DRIVER_LOGS.register(self._known_secrets)

    # -- driver hooks ---------------------------------------------------------------------

    async def _connect(self) -> None:
        settings = self.config.client_settings()
        admin = self._admin = AIOKafkaAdminClient(**settings)
        problem: BaseException | None = None
        try:
            await admin.start()
        except kafka_errors.KafkaConnectionError:
            # aiokafka's bootstrap reports every failure as "Unable to bootstrap": ask one
            # connection per broker why, so a refused login is not retried as transient.
            problem = await self._bootstrap_problem(settings)
            if problem is None:
                raise
        if problem is not None:
            raise problem
        producer = self._producer = AIOKafkaProducer(**settings, **self.config.producer_settings())
        await producer.start()

    async def _bootstrap_problem(self, settings: dict[str, Any]) -> BaseException | None:
        """Why no broker could be bootstrapped from, when a retry cannot cure it: the
        driver's refusal of the login, a TLS failure, or a ConnectionFailedError saying
        the listener does not speak TLS. None when the brokers are just unreachable."""
        found: BaseException | None = None
        for server in self.config.bootstrap_servers:
            host, _, port = server.rpartition(":")
            address = (host.strip("[]"), int(port))
            try:
                conn = await create_conn(
                    *address,
                    client_id=settings["client_id"],
                    request_timeout_ms=settings["request_timeout_ms"],
                    ssl_context=settings["ssl_context"],
                    security_protocol=settings["security_protocol"],
                    sasl_mechanism=settings.get("sasl_mechanism"),
                    sasl_plain_username=settings.get("sasl_plain_username"),
                    sasl_plain_password=settings.get("sasl_plain_password"),
                )
            except Exception as exc:
                error = translate_error(exc)
                if error is not None and error.code is ErrorCode.AUTHENTICATION:
                    return exc
                if error is not None and not error.transient and found is None:
                    found = exc  # TLS refused: no retry will change it
                elif (
                    found is None
                    and settings["ssl_context"] is not None
                    and isinstance(exc, ConnectionError | EOFError)
                    and await _speaks_plaintext(address, settings)
                ):
                    found = ConnectionFailedError(
                        f"the broker at {server} closed the TLS handshake and answers "
                        "PLAINTEXT there: use security_protocol=PLAINTEXT (or SASL_PLAINTEXT), "
                        "or the broker's TLS listener",
                        connector=self.name,
                        transient=False,
                    )
                    found.__cause__ = exc
            else:
                conn.close()
                return None
        return found

    async def _disconnect(self) -> None:
        for consumer in list(self._consumers):
            await consumer.close(finished=False)
        producer, self._producer = self._producer, None
        admin, self._admin = self._admin, None
        try:
            if producer is not None:
                await self._stop_producer(producer)
        finally:
            if admin is not None:
                await admin.close()

    async def _stop_producer(self, producer: Any) -> None:
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                await producer.stop()  # flushes what is still in flight first
        except TimeoutError:
            logger.warning(
                "disconnect: messages still unacknowledged after connect_timeout=%ss were "
                "abandoned (the broker did not answer)",
                self.config.connect_timeout,
            )

    async def _ping(self) -> None:
        # A metadata request for no topic, on the producer's client: the connection the
        # data goes through (and an open one, so slowness shows as a timeout).
        await _admin.topic_metadata(self._require(self._producer).client, [])

    def _translate_error(self, exc: BaseException) -> ConnectorError | None:
        if isinstance(exc, HandlerFailedError):
            cause = exc.error
            if exc.timeout is not None:
                return HandlerError(
                    f"the handler ran past handler_timeout={exc.timeout}s", connector=self.name
                )
            return HandlerError(
                f"the handler raised {type(cause).__name__}: {cause}", connector=self.name
            )
        return translate_error(exc)

    def _is_connection_lost(self, error: ConnectorError) -> bool:
        # aiokafka reconnects to brokers by itself; re-creating the producer would drop
        # its idempotence state (producer id, sequence numbers) and the messages in flight.
        return False

    # -- plumbing for the helpers ---------------------------------------------------------

    def _require(self, client: Any) -> Any:
        if client is None:
            raise NotConnectedError(
                "not connected: call connect() or use 'async with' first", connector=self.name
            )
        return client

    @property
    def producer(self) -> Any:
        """The aiokafka producer, for what this class does not cover (NotConnectedError
        before ``connect()``). Calls made on it bypass the road: no stats, no typed
        errors."""
        return self._require(self._producer)

    async def _road(self, operation: str, fn: Callable[[], Awaitable[T]]) -> T:
        """A consumer's or reader's driver call on the road: fetches wait as long as
        they asked the driver to (no retry), the rest are idempotent reads of state."""
        if operation.endswith(_FETCH):
            return await self.run(operation, fn, timeout=None, retry=False)
        if operation.endswith(".start"):
            return await self.run(operation, fn, retry=False)
        return await self.run(operation, fn, idempotent=True)

    def _new_consumer(self, group_id: str | None) -> Any:
        return AIOKafkaConsumer(
            **self.config.client_settings(), **self.config.consumer_settings(group_id)
        )

    def _codec_for(
        self, key_serializer: Serializer[Any] | None, value_serializer: Serializer[Any] | None
    ) -> MessageCodec[Any, Any]:
        if key_serializer is None and value_serializer is None:
            return self._codec
        return MessageCodec(
            key_serializer or self.key_serializer, value_serializer or self.value_serializer
        )

    async def _partitions_of(self, topic: str) -> list[int]:
        description = await self._metadata(topic)
        return [p.partition for p in description.partitions]

    async def _metadata(self, topic: str) -> TopicDescription:
        _check_topic(topic)
        client = self._require(self._producer).client

        async def describe() -> TopicDescription:
            (entry,) = await _admin.topic_metadata(client, [topic])
            return _admin.describe_from_metadata(entry)

        return await self.run("describe", describe, idempotent=True)

    @contextlib.asynccontextmanager
    async def _offsets_consumer(self, partitions: list[Any]) -> AsyncIterator[Any]:
        """A consumer outside any group, assigned ``partitions``, for their end,
        beginning and time offsets. Assigned first: that gives its client the topics'
        metadata, without which aiokafka's offset look-ups wait seconds for it."""
        consumer = self._new_consumer(None)
        consumer.assign(partitions)
        await self.run("offsets.start", consumer.start, retry=False)
        try:
            yield consumer
        finally:
            await consumer.stop()

    # -- producing ------------------------------------------------------------------------

    def _joined_transaction(self) -> KafkaTransaction | None:
        tx = CURRENT.get()
        if tx is not None and tx.owner is self and tx.active:
            return tx
        if self.config.transactional_id is not None:
            raise InvalidRequestError(
                "this producer is transactional (transactional_id is set): produce inside "
                "'async with kafka.transaction() as tx', from the task that opened it",
                connector=self.name,
            )
        return None

    async def produce(
        self,
        topic: str,
        value: Any,
        *,
        key: Any = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp: Timestamp | None = None,
        key_serializer: Serializer[Any] | None = None,
        value_serializer: Serializer[Any] | None = None,
        timeout: float | UseDefault = USE_DEFAULT,
    ) -> DeliveryReport:
        """Send one message and wait for the broker's acknowledgement (``acks``);
        returns where it was written.

        ``headers``: a mapping or (name, value) pairs, values str or bytes; ``partition``:
        else chosen by the key's hash (or spread when there is no key); ``timestamp``: an
        aware datetime or epoch milliseconds (default: now). Waits at most ``timeout``
        seconds (default: ``config.produce_timeout``). Never resent by the connector:
        the idempotent producer retries by itself without duplicates, so a
        ConnectorTimeoutError means the outcome is unknown (the message may still be
        written, once).

        Raises SerializationError, InvalidRequestError (too large, invalid topic, no key
        and no value), NotFoundError (no such partition), PermissionDeniedError,
        ConnectorTimeoutError, ...
        """
        self._joined_transaction()
        return await self._produce(
            topic,
            value,
            key=key,
            headers=headers,
            partition=partition,
            timestamp=timestamp,
            key_serializer=key_serializer,
            value_serializer=value_serializer,
            timeout=timeout,
        )

    async def _produce(
        self,
        topic: str,
        value: Any,
        *,
        key: Any = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp: Timestamp | None = None,
        key_serializer: Serializer[Any] | None = None,
        value_serializer: Serializer[Any] | None = None,
        timeout: float | UseDefault = USE_DEFAULT,
    ) -> DeliveryReport:
        limit = self.config.produce_timeout if timeout is USE_DEFAULT else timeout
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 < limit < 1e9:
            raise InvalidRequestError(
                "timeout must be a positive number of seconds", connector=self.name
            )
        codec = self._codec_for(key_serializer, value_serializer)
        key_bytes = codec.encode_key(key)
        value_bytes = codec.encode_value(value)
        header_list = encode_headers(headers)
        millis = timestamp_ms(timestamp)
        _check_topic(topic)
        if key_bytes is None and value_bytes is None:
            raise InvalidRequestError("a message needs a key or a value", connector=self.name)
        producer = self._require(self._producer)

        async def send() -> Any:
            if partition is not None:
                await _check_partition(producer, topic, partition)
            future = await producer.send(
                topic, value_bytes, key_bytes, partition, millis, header_list
            )
            # Shielded: cancelling the driver's future would not unsend the message.
            return await asyncio.shield(future)

        metadata = await self.run("produce", send, retry=False, timeout=limit)
        if metadata is None:  # acks=0: the broker says nothing, not even where
            return DeliveryReport(topic=topic, partition=-1, offset=-1, timestamp=None)
        return DeliveryReport(
            topic=metadata.topic,
            partition=metadata.partition,
            offset=metadata.offset,
            timestamp=from_ms(metadata.timestamp) or from_ms(millis),
        )

    async def produce_many(
        self,
        topic: str,
        messages: Iterable[OutgoingMessage[Any, Any] | Any],
        *,
        key_serializer: Serializer[Any] | None = None,
        value_serializer: Serializer[Any] | None = None,
    ) -> WriteResult:
        """Send many messages (:class:`OutgoingMessage`, or bare values) in the driver's
        batches and wait for every acknowledgement; returns a WriteResult whose errors
        point at the refused messages by index.

        Nothing acknowledged is reported failed and nothing refused is reported written.
        A message still unacknowledged at the deadline (``config.bulk_deadline()``) is
        reported failed with code ``timeout``: the producer may still write it (once).
        """
        self._joined_transaction()
        return await self._produce_many(
            topic, messages, key_serializer=key_serializer, value_serializer=value_serializer
        )

    async def _produce_many(
        self,
        topic: str,
        messages: Iterable[OutgoingMessage[Any, Any] | Any],
        *,
        key_serializer: Serializer[Any] | None = None,
        value_serializer: Serializer[Any] | None = None,
    ) -> WriteResult:
        codec = self._codec_for(key_serializer, value_serializer)
        _check_topic(topic)
        producer = self._require(self._producer)
        items = messages if isinstance(messages, list | tuple) else list(messages)
        # Bytes through the bytes serializer are what the driver takes: no call at all,
        # and, when every message is bare bytes, nothing built per message either
        # (docs/decisions/0077). set(map(type, ...)) looks at every item in C.
        encoded: Sequence[_Encoded] | Sequence[bytes]
        errors: list[RecordError]
        if is_plain_bytes(codec.value_serializer) and set(map(type, items)) <= {bytes}:
            encoded, errors = cast("Sequence[bytes]", items), []
        else:
            encoded, errors = self._encode_all(codec, items)
        written = 0
        if encoded:
            deadline = self.config.bulk_deadline(len(encoded))
            written, failures = await self.run(
                "produce_many",
                lambda: self._send_all(producer, topic, encoded, deadline),
                retry=False,
                timeout=None,  # the deadline is applied inside, message by message
            )
            errors.extend(failures)
        errors.sort(key=lambda e: e.index)
        return WriteResult(written=written, failed=len(errors), errors=tuple(errors))

    def _encode_all(
        self, codec: MessageCodec[Any, Any], items: Sequence[Any]
    ) -> tuple[list[_Encoded], list[RecordError]]:
        """The messages ready for the driver, and the refusals of those that are not."""
        errors: list[RecordError] = []
        encoded: list[_Encoded] = []
        encode_value = codec.encode_value
        as_is = is_plain_bytes(codec.value_serializer)
        for index, item in enumerate(items):
            if as_is and type(item) is bytes:
                encoded.append((index, None, item, None, None, None))
                continue
            try:
                if isinstance(item, OutgoingMessage):
                    key_bytes = codec.encode_key(item.key)
                    value_bytes = encode_value(item.value)
                    headers = encode_headers(item.headers) if item.headers else None
                    millis = timestamp_ms(item.timestamp)
                    partition = item.partition
                else:  # a bare value
                    key_bytes, value_bytes, headers, millis, partition = (
                        None,
                        encode_value(item),
                        None,
                        None,
                        None,
                    )
                if key_bytes is None and value_bytes is None:
                    raise InvalidRequestError(
                        "a message needs a key or a value", connector=self.name
                    )
            except ConnectorError as exc:
                errors.append(self._record_error(index, exc))
                continue
            encoded.append((index, key_bytes, value_bytes, headers, partition, millis))
        return encoded, errors

    def _record_error(self, index: int, error: ConnectorError) -> RecordError:
        return RecordError(
            index=index,
            message=scrub_secrets(error.message, self._known_secrets()),
            code=error.code,
        )

    def _driver_record_error(self, index: int, exc: BaseException) -> RecordError:
        error = translate_error(exc) or ConnectorError(f"{type(exc).__name__}: {exc}")
        return self._record_error(index, error)

    async def _send_all(
        self,
        producer: Any,
        topic: str,
        encoded: Sequence[_Encoded] | Sequence[bytes],
        deadline: float,
    ) -> tuple[int, list[RecordError]]:
        """Hand every message to the driver, then wait for the acknowledgements (until
        ``deadline``). ``encoded``: :data:`_Encoded` tuples, or bare values (bytes) whose
        index is their place. ``futures[i]`` is the delivery of ``encoded[i]`` (None
        when the driver refused it at once)."""
        futures: list[asyncio.Future[Any] | None] = []
        errors: list[RecordError] = []
        bare = bool(encoded) and type(encoded[0]) is bytes
        send = producer.send
        add = futures.append
        try:
            async with asyncio.timeout(deadline):
                if bare:
                    for value in encoded:
                        try:
                            add(await send(topic, value))
                        except _PER_MESSAGE as exc:
                            errors.append(self._driver_record_error(len(futures), exc))
                            add(None)
                        except kafka_errors.KafkaError as exc:
                            self._refuse_the_rest(exc, len(futures), len(encoded), errors)
                            break
                else:
                    await self._send_encoded(
                        producer, topic, cast("Sequence[_Encoded]", encoded), futures, errors
                    )
                # Acks come batch after batch, in order: wait for the first pending one,
                # and the futures behind it are mostly done by then. (No callback per
                # future, as asyncio.wait or gather would add.)
                for future in futures:
                    if future is not None and not future.done():
                        await asyncio.wait((future,))
        except TimeoutError:
            # Messages not yet handed to the driver were not sent at all.
            message = f"not sent: produce_many ran out of its {deadline:.1f}s deadline"
            handed = {e.index for e in errors}
            for position in range(len(futures), len(encoded)):
                index = position if bare else encoded[position][0]
                if index not in handed:
                    errors.append(RecordError(index=index, message=message, code=ErrorCode.TIMEOUT))
        written = 0
        for position, future in enumerate(futures):
            if future is None:
                continue
            if future.done() and not future.cancelled() and future.exception() is None:
                written += 1  # the common case first
                continue
            index = position if bare else encoded[position][0]
            if not future.done():
                future.add_done_callback(_retrieve)
                errors.append(
                    RecordError(
                        index=index,
                        message=(
                            f"not acknowledged within {deadline:.1f}s: the producer keeps "
                            "trying and may still write it (once)"
                        ),
                        code=ErrorCode.TIMEOUT,
                    )
                )
            elif future.cancelled():
                errors.append(RecordError(index=index, message="cancelled", code=ErrorCode.UNKNOWN))
            elif (failure := future.exception()) is not None:
                errors.append(self._driver_record_error(index, failure))
        return written, errors

    def _refuse_the_rest(
        self, exc: BaseException, first: int, end: int, errors: list[RecordError]
    ) -> None:
        """Refuse positions ``first`` to ``end`` of bare values with ``exc`` (about the
        topic or the producer, not one message: the same for every message left)."""
        refused = translate_error(exc) or ConnectorError(str(exc))
        errors.extend(self._record_error(index, refused) for index in range(first, end))

    async def _send_encoded(
        self,
        producer: Any,
        topic: str,
        encoded: Sequence[_Encoded],
        futures: list[asyncio.Future[Any] | None],
        errors: list[RecordError],
    ) -> None:
        refused: ConnectorError | None = None
        partitions: set[int] | None = None
        send = producer.send
        for index, key, value, headers, partition, millis in encoded:
            if refused is not None:
                errors.append(self._record_error(index, refused))
                futures.append(None)
                continue
            try:
                if partition is not None:
                    if partitions is None:
                        partitions = set(await producer.partitions_for(topic))
                    if partition not in partitions:
                        errors.append(
                            self._record_error(index, _no_partition(topic, partition, partitions))
                        )
                        futures.append(None)
                        continue
                futures.append(await send(topic, value, key, partition, millis, headers))
            except _PER_MESSAGE as exc:
                errors.append(self._driver_record_error(index, exc))
                futures.append(None)
            except kafka_errors.KafkaError as exc:
                # About the topic or the producer, not this message: the same for every
                # message left, which are not tried.
                refused = translate_error(exc) or ConnectorError(str(exc))
                errors.append(self._record_error(index, refused))
                futures.append(None)

    # -- transactions ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[KafkaTransaction]:
        """A transaction of the transactional producer (``transactional_id`` in the
        config): ``async with kafka.transaction() as tx:``. Messages produced in the
        block (``tx.produce``, or the connector's produce calls from the same task) and
        offsets given to ``tx.commit_offsets`` are committed together when it ends, and
        aborted when it raises (or is cancelled). One transaction at a time per
        connector: a second one waits.

        Raises InvalidRequestError without ``transactional_id``; ConflictError when
        another producer took the transactional id over (fenced).
        """
        if self.config.transactional_id is None:
            raise InvalidRequestError(
                "transaction() needs a transactional producer: set transactional_id",
                connector=self.name,
            )
        async with self._transaction_lock:
            producer = self._require(self._producer)
            await self.run("transaction.begin", producer.begin_transaction, retry=False)
            tx = KafkaTransaction(self, self._produce, self._produce_many, self._send_offsets)
            token = CURRENT.set(tx)
            try:
                yield tx
            except BaseException as exc:
                tx.active = False
                CURRENT.reset(token)
                if not _fenced(exc):  # a fenced producer's transaction is gone already
                    await asyncio.shield(self._abort(producer))
                raise
            tx.active = False
            CURRENT.reset(token)
            try:
                await self.run(
                    "transaction.commit", producer.commit_transaction, retry=False, timeout=None
                )
            except BaseException:
                await asyncio.shield(self._abort(producer))
                raise
            tx.committed()

    async def _abort(self, producer: Any) -> None:
        try:
            await self.run("transaction.abort", producer.abort_transaction, retry=False)
        except ConnectorError as error:
            logger.warning("aborting the transaction failed: %s", error)

    async def _send_offsets(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        producer = self._require(self._producer)
        driver_offsets = {
            driver_partition(tp): OffsetAndMetadata(o, "") for tp, o in offsets.items()
        }
        await self.run(
            "transaction.offsets",
            lambda: producer.send_offsets_to_transaction(driver_offsets, group_id),
            retry=False,
        )

    # -- consuming ------------------------------------------------------------------------

    def consume(
        self,
        topics: str | Sequence[str],
        *,
        group_id: str | UseDefault | None = USE_DEFAULT,
        auto_commit: bool = True,
        key_serializer: Serializer[Any] | None = None,
        value_serializer: Serializer[Any] | None = None,
    ) -> KafkaConsumer[Any, Any]:
        """A consumer of ``topics`` in ``group_id`` (default: ``config.group_id``; None:
        no group, every partition, nothing committed): ``async with kafka.consume(...) as
        messages: async for message in messages: ...`` (or ``async for batch in
        messages.batches(): ...``, lists of messages per fetch). See
        :class:`KafkaConsumer` for when offsets are committed, ``seek*``,
        ``pause``/``resume`` and ``lag``."""
        group = self.config.group_id if group_id is USE_DEFAULT else group_id
        names = _topics(topics)
        self._require(self._producer)
        consumer: KafkaConsumer[Any, Any] = KafkaConsumer(
            names,
            group_id=group,
            codec=self._codec_for(key_serializer, value_serializer),
            config=self.config,
            road=self._road,
            new_consumer=self._new_consumer,
            auto_commit=auto_commit and group is not None,
            on_close=self._consumers.discard,
        )
        self._consumers.add(consumer)
        return consumer

    async def process(
        self,
        topics: str | Sequence[str],
        handler: Handler[Any, Any],
        *,
        group_id: str | UseDefault = USE_DEFAULT,
        concurrency: int = 16,
        dlq: DeadLetter | None = _DEFAULT_DEAD_LETTER,
        handler_timeout: float | UseDefault | None = USE_DEFAULT,
        key_serializer: Serializer[Any] | None = None,
        value_serializer: Serializer[Any] | None = None,
    ) -> None:
        """Call ``await handler(message)`` for every message of ``topics``, as a member
        of ``group_id``, until cancelled (then it finishes what is in flight within
        ``drain_timeout``, commits and leaves the group).

        Messages of one partition are handled one at a time, in order; up to
        ``concurrency`` partitions at once. An offset is committed (every
        ``commit_interval``, on rebalance, on stop) only once every message before it in
        its partition was handled: at least once. On a rebalance, the work of revoked
        partitions is finished (or abandoned after ``drain_timeout``) and what was done is
        committed before they are given up. A handler that fails (or runs past
        ``handler_timeout``, default ``config.timeout``) is tried again as ``dlq`` says,
        then its message goes to the dead-letter topic and its offset is committed, so a
        poison message never stalls its partition. With ``dlq=None`` the first message
        that keeps failing stops the run with its HandlerError (its offset is not
        committed). A failed dead-letter write stops the run too.

        Raises InvalidRequestError (no group id, bad concurrency), HandlerError (with
        ``dlq=None``), or the ConnectorError that stopped it.
        """
        group = self.config.group_id if group_id is USE_DEFAULT else group_id
        if not group:
            raise InvalidRequestError("process() needs a group id", connector=self.name)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidRequestError("concurrency must be an integer >= 1", connector=self.name)
        limit = self.config.timeout if handler_timeout is USE_DEFAULT else handler_timeout
        self._require(self._producer)
        processor: Processor[Any, Any] = Processor(
            _topics(topics),
            handler,
            group_id=group,
            codec=self._codec_for(key_serializer, value_serializer),
            config=self.config,
            road=self._road,
            attempts=self._handler_attempts,
            send_dead_letter=self._send_dead_letter,
            new_consumer=self._new_consumer,
            concurrency=concurrency,
            dead_letter=dlq,
            handler_timeout=limit,
        )
        await processor.run()

    async def _handler_attempts(
        self, attempt: Callable[[], Awaitable[object]], policy: RetryPolicy
    ) -> object:
        # Every attempt may be retried (retry_on); the road's waits, RETRY events and
        # stats count them. No operation timeout here: the handler has its own.
        return await self.run(
            "process.handle", attempt, retry_on=_always, retry_policy=policy, timeout=None
        )

    async def _send_dead_letter(
        self, topic: str, record: Any, error: ConnectorError, attempts: int
    ) -> None:
        secrets = self._known_secrets()
        cause = error.__cause__
        original = cause.error if isinstance(cause, HandlerFailedError) else cause or error
        if record.key is None and record.value is None:
            return  # nothing to keep: an empty message is dropped with its offset
        headers = [
            *(record.headers or ()),
            ("dlq.original.topic", str(record.topic).encode()),
            ("dlq.original.partition", str(record.partition).encode()),
            ("dlq.original.offset", str(record.offset).encode()),
            ("dlq.error.type", type(original).__name__.encode()),
            ("dlq.error", scrub_secrets(str(error), secrets)[:2000].encode("utf-8", "replace")),
            ("dlq.attempts", str(attempts).encode()),
            ("dlq.original.timestamp", str(record.timestamp).encode()),
        ]
        producer = self._require(self._producer)

        async def send() -> Any:
            future = await producer.send(topic, record.value, record.key, None, None, headers)
            return await asyncio.shield(future)

        await self.run(
            "process.dead_letter", send, retry=False, timeout=self.config.produce_timeout
        )

    # -- admin ------------------------------------------------------------------------------

    async def create_topic(
        self,
        topic: str,
        *,
        partitions: int = 1,
        replication_factor: int | None = None,
        configs: Mapping[str, str] | None = None,
    ) -> None:
        """Create ``topic`` with ``partitions`` partitions, ``replication_factor``
        replicas (None: the cluster's ``default.replication.factor``) and topic ``configs``
        (``{"retention.ms": "86400000"}``). Raises ConflictError when it exists,
        InvalidRequestError for bad settings, PermissionDeniedError."""
        _check_topic(topic)
        admin = self._require(self._admin)
        client = self._require(self._producer).client
        await self.run(
            "create_topic",
            lambda: _admin.create_topic(
                client,
                admin,
                topic,
                partitions=partitions,
                replication_factor=replication_factor,
                configs=configs or {},
                timeout_ms=round(self.config.request_timeout * 1000),
            ),
        )

    async def ensure_stream(self, name: str, schema: Stream) -> SchemaChange:
        """Create topic ``name`` (one partition, the cluster's replication factor) when it
        does not exist: a sync's sink, say. Values carry any fields, so nothing else
        changes. From then on :meth:`write` keys the messages of ``name`` by
        ``schema.primary_key`` (when it has one), so every version of a record lands on
        one partition in order and a compacted topic keeps the latest. Raises
        InvalidRequestError for a bad name, PermissionDeniedError."""
        _check_topic(name)
        if schema.primary_key:
            self._stream_keys[name] = tuple(schema.primary_key)
        else:
            self._stream_keys.pop(name, None)
        if name in await self.list_topics():
            return SchemaChange()
        try:
            await self.create_topic(name)
        except ConflictError:  # created meanwhile
            return SchemaChange()
        return SchemaChange(created=True)

    async def delete_topic(self, topic: str) -> None:
        """Delete ``topic``. Raises NotFoundError when it does not exist."""
        _check_topic(topic)
        admin = self._require(self._admin)
        client = self._require(self._producer).client
        await self.run(
            "delete_topic",
            lambda: _admin.delete_topic(
                client, admin, topic, timeout_ms=round(self.config.request_timeout * 1000)
            ),
        )

    async def describe_topic(self, topic: str) -> TopicDescription:
        """Partitions (leader, replicas, in-sync replicas), replication factor and
        effective configs of ``topic``. Raises NotFoundError when it does not exist."""
        _check_topic(topic)
        admin = self._require(self._admin)
        client = self._require(self._producer).client
        return await self.run(
            "describe_topic", lambda: _admin.describe_topic(client, admin, topic), idempotent=True
        )

    async def list_topics(self, *, internal: bool = False) -> list[str]:
        """Every topic's name, sorted (Kafka's ``__`` topics only with ``internal=True``)."""
        client = self._require(self._producer).client
        return await self.run(
            "list_topics", lambda: _admin.list_topics(client, internal=internal), idempotent=True
        )

    async def list_consumer_groups(self) -> list[str]:
        """Every consumer group's id, sorted."""
        admin = self._require(self._admin)
        return await self.run(
            "list_consumer_groups", lambda: _admin.list_consumer_groups(admin), idempotent=True
        )

    async def consumer_group_lag(self, group_id: str) -> list[PartitionLag]:
        """For every partition ``group_id`` committed an offset in: that offset
        (``position``), the partition's end and the lag between them, sorted by topic and
        partition."""
        admin = self._require(self._admin)
        committed = await self.run(
            "consumer_group_lag", lambda: _admin.committed_offsets(admin, group_id), idempotent=True
        )
        if not committed:
            return []
        tps = [driver_partition(tp) for tp in sorted(committed)]
        async with self._offsets_consumer(tps) as consumer:
            ends = await self._road("offsets.end", lambda: consumer.end_offsets(tps))
        return [
            PartitionLag(
                tp.topic,
                tp.partition,
                committed[(tp.topic, tp.partition)],
                int(ends[tp]),
                max(0, int(ends[tp]) - committed[(tp.topic, tp.partition)]),
            )
            for tp in tps
        ]

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Each partition's end offset (the offset the next message gets; under
        ``read_committed``, the last stable offset). Raises NotFoundError."""
        partitions = await self._partitions_of(topic)
        tps = [driver_partition((topic, p)) for p in partitions]
        async with self._offsets_consumer(tps) as consumer:
            ends = await self._road("offsets.end", lambda: consumer.end_offsets(tps))
        return {tp.partition: int(ends[tp]) for tp in tps}

    # -- records: discover, read, sample, write -------------------------------------------------

    async def discover(self) -> Catalog:
        """Every topic (Kafka's own ``__`` topics left out) as a :class:`TopicStream`:
        partitions, replication factor, the messages it retains; and, when values are JSON
        (``value_format=json``, a JsonSerializer or a PydanticSerializer), the fields of up
        to ``config.discover_sample`` of its latest messages, and as primary key the value
        fields that always hold the message key."""
        client = self._require(self._producer).client
        entries = await self.run(
            "discover", lambda: _admin.topic_metadata(client, None), idempotent=True
        )
        descriptions = sorted(
            (
                _admin.describe_from_metadata(e)
                for e in entries
                if int(e["error_code"]) == 0 and not str(e["topic"]).startswith("__")
            ),
            key=lambda d: d.name,
        )
        tps = [driver_partition((d.name, p.partition)) for d in descriptions for p in d.partitions]
        if not tps:
            return Catalog(streams=())
        sample = self.config.discover_sample if is_json(self.value_serializer) else 0
        async with self._offsets_consumer(tps) as consumer:
            ends = await self._road("offsets.end", lambda: consumer.end_offsets(tps))
            begins = await self._road("offsets.begin", lambda: consumer.beginning_offsets(tps))
            ranges: dict[Any, tuple[int, int]] = {}
            if sample:
                for description in descriptions:
                    # The latest messages, spread over the topic's partitions.
                    share = -(-sample // max(1, description.partition_count))
                    for p in description.partitions:
                        tp = driver_partition((description.name, p.partition))
                        end = int(ends[tp])
                        ranges[tp] = (max(int(begins[tp]), end - share), end)
            samples = await self._samples(consumer, ranges)
        streams = []
        for description in descriptions:
            mine = [tp for tp in tps if tp.topic == description.name]
            count = sum(int(ends[tp]) - int(begins[tp]) for tp in mine)
            messages = samples.get(description.name, [])[:sample]
            streams.append(
                TopicStream(
                    name=description.name,
                    fields=infer_fields(objects(messages)),
                    primary_key=infer_key(messages),
                    estimated_count=count,
                    partitions=description.partition_count,
                    replication_factor=description.replication_factor,
                )
            )
        return Catalog(streams=tuple(streams))

    async def _samples(
        self, consumer: Any, ranges: dict[Any, tuple[int, int]]
    ) -> dict[str, list[KafkaMessage[Any, Any]]]:
        """The messages in ``ranges`` ({partition: (start, end)}), read with one consumer
        (not one per topic), by topic. Messages the serializers cannot decode tell
        nothing about fields: skipped."""
        wanted = {tp: bounds for tp, bounds in ranges.items() if bounds[0] < bounds[1]}
        found: dict[str, list[KafkaMessage[Any, Any]]] = {}
        if not wanted:
            return found
        consumer.assign(list(wanted))
        for tp, (start, _) in wanted.items():
            consumer.seek(tp, start)
        pending = set(wanted)
        stall = self.config.timeout or self.config.request_timeout
        progress = self._clock()
        while pending:
            batch = await self._road(
                "discover.fetch", functools.partial(consumer.getmany, *pending, timeout_ms=200)
            )
            for tp, records in batch.items():
                end = wanted[tp][1]
                for record in records:
                    if record.offset < end:
                        progress = self._clock()
                        with contextlib.suppress(SerializationError):
                            found.setdefault(tp.topic, []).append(self._codec.decode(record))
            for tp in list(pending):
                position = await self._road(
                    "discover.position", functools.partial(consumer.position, tp)
                )
                if position >= wanted[tp][1]:
                    pending.discard(tp)
            if pending and self._clock() - progress > stall:
                raise ConnectorTimeoutError(
                    f"discover(): sampling made no progress for {stall}s", connector=self.name
                )
        return found

    def _reader(
        self,
        topic: str,
        since: Any,
        limit: int | None,
        *,
        messages: bool,
        codec: MessageCodec[Any, Any] | None = None,
    ) -> TopicReader:
        return TopicReader(
            topic,
            since=since,
            limit=limit,
            codec=codec or self._codec,
            road=self._road,
            new_consumer=self._new_consumer,
            partitions_of=self._partitions_of,
            stall_timeout=self.config.timeout or self.config.request_timeout,
            messages=messages,
        )

    def read(self, stream: str, *, since: Any = None, limit: int | None = None) -> TopicReader:
        """The records of topic ``stream`` up to its end when the read begins, in offset
        order within each partition: a JSON-object value is the record, any other value
        ``{"key": key, "value": value}``. ``since``: None (from the start), the
        ``checkpoint`` of an earlier reader (strictly after it: exactly once across
        reads, and it survives JSON), or a timestamp (aware datetime or epoch ms: the
        messages at or after it, at least once). ``async for record in reader``, then
        ``reader.checkpoint``. Raises NotFoundError for an unknown topic (at the first
        step), InvalidRequestError for a bad ``since`` or ``limit``."""
        self._require(self._producer)
        return self._reader(stream, since, limit, messages=False)

    def read_messages(
        self,
        topic: str,
        *,
        since: Any = None,
        limit: int | None = None,
        key_serializer: Serializer[Any] | None = None,
        value_serializer: Serializer[Any] | None = None,
    ) -> TopicReader:
        """As :meth:`read`, but yields whole :class:`KafkaMessage` objects (key, value,
        headers, offsets): to look at a dead-letter topic, say, without joining a group."""
        self._require(self._producer)
        codec = self._codec_for(key_serializer, value_serializer)
        return self._reader(topic, since, limit, messages=True, codec=codec)

    async def sample(self, stream: str, n: int = 10) -> list[Record]:
        """Up to ``n`` records of topic ``stream`` (the first it retains)."""
        return [record async for record in self.read(stream, limit=n)]

    async def write(
        self,
        stream: str,
        records: Iterable[Record],
        *,
        key: str | Callable[[Record], Any] | None = None,
    ) -> WriteResult:
        """Produce each record as one message of topic ``stream``: the record is the value
        (through the value serializer: JSON, or a pydantic model's), and the key is
        ``record[key]`` (or ``key(record)``). Without ``key``, the primary key of the
        stream last given to :meth:`ensure_stream` for this topic (what a
        ``StreamSync`` does before its first batch): one field's value, an object of
        several (compact JSON text for string or bytes keys); no key when there is none.
        Per-record results as :meth:`produce_many`; a record without the key's field is
        refused alone."""
        messages: list[OutgoingMessage[Any, Any] | _Refused] = []
        fields = self._stream_keys.get(stream) if key is None else None
        for record in records:
            try:
                if fields:
                    key_value = _primary_key_of(record, fields, self.key_serializer)
                else:
                    key_value = _key_of(record, key)
                    if isinstance(self.key_serializer, StringSerializer):
                        key_value = _as_text(key_value)
            except (KeyError, TypeError) as exc:
                messages.append(_Refused(f"cannot take the key of the record: {exc!r}"))
                continue
            messages.append(OutgoingMessage(value=dict(record), key=key_value))
        refused = [i for i, m in enumerate(messages) if isinstance(m, _Refused)]
        sendable = [m for m in messages if isinstance(m, OutgoingMessage)]
        result = await self.produce_many(stream, sendable)
        if not refused:
            return result
        # Put the refused records back at their places in the indexes of the result.
        positions = [i for i, m in enumerate(messages) if isinstance(m, OutgoingMessage)]
        errors = [e.model_copy(update={"index": positions[e.index]}) for e in result.errors]
        for index in refused:
            item = messages[index]
            assert isinstance(item, _Refused)
            errors.append(
                RecordError(index=index, message=item.reason, code=ErrorCode.INVALID_REQUEST)
            )
        errors.sort(key=lambda e: e.index)
        return WriteResult(written=result.written, failed=len(errors), errors=tuple(errors))


class _Refused:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _key_of(record: Record, key: str | Callable[[Record], Any] | None) -> Any:
    if key is None:
        return None
    if isinstance(key, str):
        return record[key]
    return key(record)


def _primary_key_of(record: Record, fields: tuple[str, ...], serializer: Serializer[Any]) -> Any:
    """The message key of ``record`` from its stream's primary key ``fields``, in the form
    ``serializer`` takes: text for string keys (compact JSON for several fields), that
    text's UTF-8 bytes for bytes keys, the value (an object for several) otherwise."""
    value = record[fields[0]] if len(fields) == 1 else {f: record[f] for f in fields}
    if value is None or not isinstance(serializer, StringSerializer | BytesSerializer):
        return value
    if isinstance(value, bytes) and isinstance(serializer, BytesSerializer):
        return value
    if isinstance(value, Mapping):
        text = json.dumps(value, separators=(",", ":"), default=str)
    else:
        text = _as_text(value)
    return text.encode("utf-8") if isinstance(serializer, BytesSerializer) else text


def _as_text(value: Any) -> Any:
    # Record fields are typed (an integer id); string keys carry them as text.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | Mapping | list | tuple | set | bytes):
        raise TypeError(f"a {type(value).__name__} is not a key for string keys")
    return str(value)


async def _speaks_plaintext(address: tuple[str, int], settings: dict[str, Any]) -> bool:
    try:
        conn = await create_conn(*address, client_id=settings["client_id"], request_timeout_ms=5000)
    except Exception:
        return False
    conn.close()
    return True


def _fenced(exc: BaseException) -> bool:
    """Whether ``exc`` says a newer producer took the transactional id over."""
    cause = exc.__cause__ if isinstance(exc, ConnectorError) else exc
    return isinstance(cause, kafka_errors.ProducerFenced | kafka_errors.InvalidProducerEpoch)


def _always(error: ConnectorError) -> bool:
    return True


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # read, so that asyncio does not log it as never retrieved


def _topics(topics: str | Sequence[str]) -> tuple[str, ...]:
    names = (topics,) if isinstance(topics, str) else tuple(topics)
    if not names:
        raise InvalidRequestError("name at least one topic", connector="kafka")
    for name in names:
        _check_topic(name)
    return names


_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _check_topic(topic: str) -> None:
    # Kafka's own rule (Topic.validate); checked here so that a bad name is refused at
    # once instead of after a metadata timeout.
    if not isinstance(topic, str) or not topic:
        raise InvalidRequestError("a topic name must be a non-empty string", connector="kafka")
    if topic in (".", "..") or len(topic) > 249 or not set(topic) <= _TOPIC_CHARS:
        # The name is not echoed: whatever a caller passes here could be anything.
        raise InvalidRequestError(
            "invalid topic name: up to 249 characters among a-z, A-Z, 0-9, '.', '_' and "
            "'-', and not '.' or '..'",
            connector="kafka",
        )


async def _check_partition(producer: Any, topic: str, partition: int) -> None:
    partitions = set(await producer.partitions_for(topic))
    if partition not in partitions:
        raise _no_partition(topic, partition, partitions)


def _no_partition(topic: str, partition: Any, partitions: set[int]) -> NotFoundError:
    return NotFoundError(
        f"partition {partition!r} not found in topic {topic!r}, which has "
        f"partitions 0 to {max(partitions, default=-1)}",
        connector="kafka",
    )
