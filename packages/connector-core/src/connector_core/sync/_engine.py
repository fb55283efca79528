"""StreamSync: any Readable source into any Writable sink, batch by batch, resumable."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from connector_core._config import config_error
from connector_core._errors import NotFoundError, SchemaChangeError, SyncWriteError
from connector_core._models import (
    Checkpoint,
    FieldType,
    Record,
    RecordError,
    SchemaChange,
    Stream,
    StreamField,
    WriteResult,
)
from connector_core._protocols import Deletable, Discoverable, Provisionable, Readable, Writable
from connector_core.sync._state import JsonObject, StateStore

logger = logging.getLogger("connector_core.sync")

DeleteMode = Literal["soft", "hard"]


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Where a running stream sync is, after every committed batch."""

    name: str
    records: int
    """Records read and applied in this run (written or deleted)."""
    batches: int
    deleted: int
    elapsed: float
    """Seconds since the run started."""
    rate: float
    """Records per second over the run so far."""
    lag: float | None
    """Seconds between now and the cursor of the last record applied, when the cursor is
    a timestamp (how far behind the source the sink is); None otherwise."""
    remaining: int | None
    """The source's estimated count less the records applied, when it gave one (a
    rough figure: estimates come from statistics)."""
    checkpoint: JsonObject | None


@dataclass(slots=True)
class StreamReport:
    """What one run of a stream sync did."""

    name: str
    source_stream: str
    sink_stream: str
    resumed_from: JsonObject | None = None
    checkpoint: JsonObject | None = None
    """Where the next run resumes."""
    records: int = 0
    batches: int = 0
    written: int = 0
    deleted: int = 0
    created: bool = False
    """The sink's table or collection was created by this run."""
    added_fields: tuple[str, ...] = ()
    """Fields the sink gained in this run (the source added them)."""
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.elapsed if self.elapsed > 0 else 0.0


ProgressCallback = Callable[[SyncProgress], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class SyncBatch:
    """A batch the sink has just applied, before its checkpoint is stored (what
    ``on_batch`` gets): publish events from it, and a crash before the checkpoint makes
    the next run apply, and hand over, the same records again (at least once)."""

    name: str
    """The sync's name."""
    sink_stream: str
    records: Sequence[Record]
    """The batch's records in source order, deletes included (see ``deleted_field``)."""
    key_fields: tuple[str, ...]
    """The fields that identify a record (the source's primary key), or ()."""
    deleted_field: str | None

    def is_deleted(self, record: Record) -> bool:
        """Whether ``record`` is a delete (its ``deleted_field`` is set)."""
        return self.deleted_field is not None and _is_set(record.get(self.deleted_field))


BatchCallback = Callable[[SyncBatch], Awaitable[None] | None]


def field_type_of(value: Any) -> FieldType:
    """The portable type of a Python value (UNKNOWN for None and what has none)."""
    checks: tuple[tuple[type | tuple[type, ...], FieldType], ...] = (
        (bool, FieldType.BOOLEAN),
        (int, FieldType.INTEGER),
        (float, FieldType.NUMBER),
        (Decimal, FieldType.DECIMAL),
        (str, FieldType.STRING),
        (dt.datetime, FieldType.DATETIME),
        (dt.date, FieldType.DATE),
        (dt.time, FieldType.TIME),
        (dt.timedelta, FieldType.DURATION),
        ((bytes, bytearray, memoryview), FieldType.BINARY),
        (uuid.UUID, FieldType.UUID),
        (Mapping, FieldType.OBJECT),
        ((list, tuple), FieldType.ARRAY),
    )
    for kind, field_type in checks:
        if isinstance(value, kind):
            return field_type
    return FieldType.UNKNOWN


def check_compatible(stream: str, was: Mapping[str, str], now: Stream) -> None:
    """Raise SchemaChangeError when a field of ``now`` changed its portable type since
    ``was`` (field name -> type). A field that was or is UNKNOWN (no value seen yet),
    or that became JSON (which holds anything), is compatible."""
    for f in now.fields:
        old = was.get(f.name)
        if old is None or old == f.type.value:
            continue
        if FieldType.UNKNOWN.value in (old, f.type.value) or f.type is FieldType.JSON:
            continue
        raise SchemaChangeError(
            f"stream {stream!r}: field {f.name!r} changed type from {old} to {f.type.value}; "
            "the copy cannot follow it. Alter or drop the field in the sink (or delete the "
            "sync's state to start the stream over), then run again",
            stream=stream,
            field=f.name,
            was=old,
            now=f.type.value,
        )


class StreamSync:
    """Copy one stream of a :class:`~connector_core.Readable` source into a stream of a
    :class:`~connector_core.Writable` sink, incrementally and resumably.

    A run reads ``source.read(stream, since=<checkpoint>)`` in batches of ``batch_size``
    records, writes each batch with ``sink.write`` (which upserts on the key, so a batch
    written twice leaves one record per key) and, once the sink has taken the whole
    batch, stores the reader's checkpoint in ``state``. A crash re-runs at most the one
    batch that was not checkpointed. The next run resumes strictly after the last
    checkpoint, so a source read by an ``updated_at`` cursor (``read_options=
    {"cursor_field": "updated_at"}``) brings over what changed since.

    Schema: when the source is :class:`~connector_core.Discoverable` the run starts from
    its :class:`~connector_core.Stream`; a sink that is
    :class:`~connector_core.Provisionable` gets ``ensure_stream(target, stream)``
    (``create=True``): its table or collection is created, and a field the source added
    later is added to it, before the first batch and whenever a batch carries a field
    not seen yet. A field whose type changed stops the stream with
    :class:`~connector_core.SchemaChangeError` before anything of the new shape is
    written.

    Deletes: with ``deleted_field`` a record whose field is set (not None, not False) is
    a delete. ``delete_mode="soft"`` writes it like any record (the sink keeps the
    marker column); ``"hard"`` deletes it from a :class:`~connector_core.Deletable` sink
    by its key.

    Batches: ``on_batch`` (sync or async) gets each :class:`SyncBatch` once the sink
    has applied it and before its checkpoint is stored, so what it does (publish an
    event per record) happens at least once for every record; when it raises, the
    batch is not checkpointed and the run raises.

    Progress: ``on_progress`` (sync or async) gets a :class:`SyncProgress` after every
    committed batch, and INFO lines go to ``connector_core.sync`` every
    ``log_every`` seconds; :meth:`run` returns a :class:`StreamReport`.

    Raises ConfigError at construction naming every bad setting; during a run, what the
    connectors and the store raise, SyncWriteError when the sink rejects records (the
    batch stays unapplied and unchecked: nothing is half-applied silently) and
    SchemaChangeError.
    """

    def __init__(
        self,
        source: Readable | object,
        stream: str,
        sink: Writable | object,
        *,
        state: StateStore,
        target: str | None = None,
        name: str | None = None,
        batch_size: int = 10_000,
        read_options: Mapping[str, Any] | None = None,
        deleted_field: str | None = None,
        delete_mode: DeleteMode = "soft",
        create: bool = True,
        on_progress: ProgressCallback | None = None,
        on_batch: BatchCallback | None = None,
        log_every: float = 10.0,
    ) -> None:
        problems: list[tuple[str, str]] = []
        if not isinstance(source, Readable):
            problems.append(("source", "must be a Readable connector (read and sample)"))
        if not isinstance(sink, Writable):
            problems.append(("sink", "must be a Writable connector (write)"))
        if not stream:
            problems.append(("stream", "must not be empty"))
        target = target or stream
        name = name or f"{stream}->{target}"
        if ":" in name:
            problems.append(("name", "must not contain ':' (it prefixes state keys)"))
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            problems.append(("batch_size", "must be an integer >= 1"))
        if delete_mode not in ("soft", "hard"):
            problems.append(("delete_mode", "must be 'soft' or 'hard'"))
        if delete_mode == "hard" and deleted_field is None:
            problems.append(("deleted_field", "is needed for delete_mode='hard'"))
        if delete_mode == "hard" and not isinstance(sink, Deletable):
            problems.append(("delete_mode", "'hard' needs a sink that can delete by key"))
        if not (log_every > 0):
            problems.append(("log_every", "must be a number of seconds > 0"))
        if problems:
            raise config_error("StreamSync", problems)
        assert isinstance(source, Readable)
        assert isinstance(sink, Writable)
        self.source: Readable = source
        self.stream = stream
        self.sink: Writable = sink
        self.target = target
        self.name = name
        self.state = state
        self.batch_size = batch_size
        self.read_options = dict(read_options or {})
        self.deleted_field = deleted_field
        self.delete_mode: DeleteMode = delete_mode
        self.create = create
        self.on_progress = on_progress
        self.on_batch = on_batch
        self.log_every = log_every

    def __repr__(self) -> str:
        return f"StreamSync(name={self.name!r}, stream={self.stream!r}, target={self.target!r})"

    @property
    def checkpoint_key(self) -> str:
        return f"{self.name}:checkpoint"

    @property
    def schema_key(self) -> str:
        return f"{self.name}:schema"

    async def checkpoint(self) -> JsonObject | None:
        """The stored position the next run resumes from (None: from the start)."""
        entry = await self.state.get(self.checkpoint_key)
        return entry.get("position") if entry else None

    async def run(self) -> StreamReport:
        """Sync from the stored checkpoint to the end of the source (see the class)."""
        started = time.monotonic()
        position = await self.checkpoint()
        report = StreamReport(
            name=self.name,
            source_stream=self.stream,
            sink_stream=self.target,
            resumed_from=position,
            checkpoint=position,
        )
        schema = await self._discover()
        known = _Schema(schema)
        if schema is not None:
            await self._fit_schema(schema, report)
        # The reader's order (for records of a reader that has no checkpoint of its own):
        # the cursor asked for, else the stream's (the Readable contract's order).
        cursor_field: str | None = self.read_options.get("cursor_field") or (
            schema.cursor_field if schema is not None else None
        )
        key_fields = tuple(
            self.read_options.get("key_fields") or (schema.primary_key if schema else ())
        )
        since = Checkpoint.model_validate(position) if position is not None else None
        if position is not None:
            logger.info("sync %s resuming from %s", self.name, position)
        reader = self.source.read(self.stream, since=since, **self.read_options)
        estimate = schema.estimated_count if schema is not None else None
        last_log = started
        batches = _batches(reader, self.batch_size, cursor_field, key_fields)
        try:
            async for records, checkpoint in batches:
                if known.stream is not None and (extra := known.new_fields(records)):
                    await self._add_fields(known, extra, report)
                if text_fields := known.text_fields():
                    records = _as_text(records, text_fields)
                await self._apply(records, report, key_fields)
                if self.on_batch is not None:
                    applied = SyncBatch(
                        self.name, self.target, records, key_fields, self.deleted_field
                    )
                    if inspect.isawaitable(handed := self.on_batch(applied)):
                        await handed
                report.records += len(records)
                report.batches += 1
                report.checkpoint = checkpoint.model_dump(mode="json")
                await self.state.put(
                    self.checkpoint_key, {"position": report.checkpoint, "at": _now_iso()}
                )
                now = time.monotonic()
                report.elapsed = now - started
                progress = SyncProgress(
                    name=self.name,
                    records=report.records,
                    batches=report.batches,
                    deleted=report.deleted,
                    elapsed=report.elapsed,
                    rate=report.rate,
                    lag=_lag(records[-1].get(cursor_field) if cursor_field else None),
                    remaining=max(0, estimate - report.records) if estimate else None,
                    checkpoint=report.checkpoint,
                )
                if now - last_log >= self.log_every:
                    last_log = now
                    logger.info(
                        "sync %s: %d records in %d batches, %.0f records/s, lag %s",
                        self.name, progress.records, progress.batches, progress.rate,
                        "n/a" if progress.lag is None else f"{progress.lag:.1f}s",
                    )  # fmt: skip
                if self.on_progress is not None:
                    result = self.on_progress(progress)
                    if inspect.isawaitable(result):
                        await result
        finally:
            await batches.aclose()
        report.elapsed = time.monotonic() - started
        logger.info(
            "sync %s done: %d records (%d deleted) in %d batches, %.1fs, %.0f records/s%s",
            self.name, report.records, report.deleted, report.batches, report.elapsed,
            report.rate, f", added fields {list(report.added_fields)}" if report.added_fields
            else "",
        )  # fmt: skip
        return report

    async def _discover(self) -> Stream | None:
        if not isinstance(self.source, Discoverable):
            return None
        catalog = await self.source.discover()
        try:
            return catalog.stream(self.stream)
        except NotFoundError:
            return None  # a stream discovery does not list (a view, a new topic): no schema

    async def _fit_schema(self, schema: Stream, report: StreamReport) -> None:
        stored = await self.state.get(self.schema_key)
        was: dict[str, str] = dict(stored.get("fields", {})) if stored else {}
        check_compatible(self.stream, was, schema)
        if self.create and isinstance(self.sink, Provisionable):
            change = await self.sink.ensure_stream(self.target, schema)
            self._note(change, report)
        fields = dict(was)
        for f in schema.fields:
            if f.type is not FieldType.UNKNOWN or f.name not in fields:
                fields[f.name] = f.type.value
        await self.state.put(self.schema_key, {"fields": fields})

    async def _add_fields(
        self, known: _Schema, extra: Sequence[StreamField], report: StreamReport
    ) -> None:
        schema = known.extend(extra)
        logger.info(
            "sync %s: the source added field(s) %s", self.name, ", ".join(f.name for f in extra)
        )
        await self._fit_schema(schema, report)

    def _note(self, change: SchemaChange, report: StreamReport) -> None:
        report.created = report.created or change.created
        added = [f for f in change.added if f not in report.added_fields]
        report.added_fields = (*report.added_fields, *added)
        if change.created:
            logger.info("sync %s: created %r in the sink", self.name, self.target)
        if added:
            logger.info(
                "sync %s: added field(s) %s to %r", self.name, ", ".join(added), self.target
            )

    async def _apply(
        self, records: list[Record], report: StreamReport, key_fields: Sequence[str]
    ) -> None:
        marker = self.deleted_field
        if marker is None:
            await self._write(self.sink.write(self.target, records), len(records), "write")
            report.written += len(records)
            return
        if self.delete_mode == "soft":
            await self._write(self.sink.write(self.target, records), len(records), "write")
            report.written += len(records)
            report.deleted += sum(1 for r in records if _is_set(r.get(marker)))
            return
        # Hard deletes: the last record of a key in the batch decides what happens to it.
        latest: dict[Any, Record] = {}
        for record in records:
            latest[tuple(record.get(k) for k in key_fields) if key_fields else id(record)] = record
        live = [r for r in latest.values() if not _is_set(r.get(marker))]
        gone = [r for r in latest.values() if _is_set(r.get(marker))]
        if live:
            await self._write(self.sink.write(self.target, live), len(live), "write")
            report.written += len(live)
        if gone:
            assert isinstance(self.sink, Deletable)
            keys = [{k: r[k] for k in key_fields} if key_fields else r for r in gone]
            await self._write(self.sink.delete_keys(self.target, keys), len(gone), "delete")
            report.deleted += len(gone)

    async def _write(self, call: Awaitable[WriteResult], count: int, what: str) -> None:
        result = await call
        if result.failed:
            errors: tuple[RecordError, ...] = result.errors
            first = "; ".join(f"#{e.index} {e.code.value}: {e.message}" for e in errors[:3])
            raise SyncWriteError(
                f"sync {self.name}: the sink refused to {what} {result.failed} of {count} "
                f"records of a batch (the batch is not checkpointed; the next run writes it "
                f"again); first errors: {first or 'none given'}",
                errors=errors,
            )


class _Schema:
    """The fields known so far, to notice a record carrying a new one."""

    def __init__(self, stream: Stream | None) -> None:
        self.stream = stream
        self._names: set[str] = {f.name for f in stream.fields} if stream else set()
        self._last_keys: Any = None
        self._text_of: Stream | None = None
        self._text: tuple[str, ...] = ()

    def new_fields(self, records: list[Record]) -> list[StreamField]:
        """The fields of ``records`` not known yet; when the records do not all have the
        same fields, they are filled in with None (in place), so a sink of columns gets
        one shape per batch."""
        names = self._names
        found: dict[str, FieldType] = {}
        ragged = False
        for record in records:
            keys = record.keys()
            if keys == self._last_keys:  # the usual case: the same fields as the last record
                continue
            ragged = ragged or self._last_keys is not None
            self._last_keys = keys
            for key in keys:
                if key not in names and found.get(key, FieldType.UNKNOWN) is FieldType.UNKNOWN:
                    found[key] = field_type_of(record[key])
        if found:  # fill in types from later records of the batch when the first was None
            for key, kind in list(found.items()):
                if kind is FieldType.UNKNOWN:
                    for record in records:
                        if record.get(key) is not None:
                            found[key] = field_type_of(record[key])
                            break
        if ragged:
            every = dict.fromkeys(k for r in records for k in r)
            for index, record in enumerate(records):
                if len(record) != len(every):
                    records[index] = {k: record.get(k) for k in every}
            self._last_keys = None
        return [StreamField(name=k, type=t) for k, t in found.items()]

    def text_fields(self) -> tuple[str, ...]:
        """The fields declared as strings (cached until the schema changes)."""
        stream = self.stream
        if stream is None:
            return ()
        if self._text_of is not stream:
            self._text_of = stream
            self._text = tuple(f.name for f in stream.fields if f.type is FieldType.STRING)
        return self._text

    def extend(self, extra: Sequence[StreamField]) -> Stream:
        assert self.stream is not None
        self.stream = self.stream.model_copy(update={"fields": (*self.stream.fields, *extra)})
        self._names.update(f.name for f in extra)
        self._last_keys = None
        return self.stream


def _batches(
    reader: AsyncIterator[Record],
    size: int,
    cursor_field: str | None,
    key_fields: Sequence[str],
) -> AsyncGenerator[tuple[list[Record], Checkpoint], None]:
    return _read_ahead(reader, size, cursor_field, key_fields)


async def _read_ahead(
    reader: AsyncIterator[Record],
    size: int,
    cursor_field: str | None,
    key_fields: Sequence[str],
) -> AsyncGenerator[tuple[list[Record], Checkpoint], None]:
    """Batches of ``size`` records and the checkpoint just after each, read one batch
    ahead (the next batch is read while the current one is written)."""
    queue: asyncio.Queue[tuple[list[Record], Checkpoint] | BaseException | None] = asyncio.Queue(1)

    def checkpoint_after(record: Record) -> Checkpoint:
        taken = getattr(reader, "checkpoint", None)
        if isinstance(taken, Checkpoint):
            return taken
        return Checkpoint.after(record, cursor_field=cursor_field, key_fields=key_fields)

    async def fill() -> None:
        try:
            batch: list[Record] = []
            async for record in reader:
                batch.append(record)
                if len(batch) >= size:
                    await queue.put((batch, checkpoint_after(record)))
                    batch = []
            if batch:
                await queue.put((batch, checkpoint_after(batch[-1])))
            await queue.put(None)
        except Exception as exc:  # handed to the consumer, which raises it
            await queue.put(exc)

    task = asyncio.ensure_future(fill())
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
        await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        close = getattr(reader, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


def _as_text(records: list[Record], fields: Sequence[str]) -> list[Record]:
    """Values of fields the source declares as strings, in their text form: a source may
    hand out a native value its discovery reports as a string (MongoDB's ObjectId), which
    a sink's text column or a JSON message cannot take as it is."""
    out: list[Record] | None = None
    for i, record in enumerate(records):
        fixed: dict[str, Any] | None = None
        for name in fields:
            value = record.get(name)
            if value is None or isinstance(value, _NOT_TEXT):
                continue
            if fixed is None:
                fixed = dict(record)
            fixed[name] = str(value)
        if fixed is not None:
            if out is None:
                out = list(records)
            out[i] = fixed
    return records if out is None else out


# Values str() would not turn into their text (bytes' repr, containers).
_NOT_TEXT = (str, bytes, bytearray, memoryview, dict, list, tuple)


def _is_set(value: Any) -> bool:
    return value is not None and value is not False


def _lag(cursor: Any) -> float | None:
    if isinstance(cursor, dt.datetime):
        now = dt.datetime.now(cursor.tzinfo) if cursor.tzinfo else dt.datetime.now()
        return max(0.0, (now - cursor).total_seconds())
    return None


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
