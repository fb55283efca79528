"""Generic incremental sync: read -> map -> write -> publish -> checkpoint, batch by batch."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from connector_adapters._domain import DomainEvent
from connector_adapters._ports import EventPublisher, JsonObject, StateStore
from connector_core import ErrorCode, RecordError, SerializationError, Writable

T = TypeVar("T")

logger = logging.getLogger("connector_adapters.sync")


@dataclass(frozen=True, slots=True)
class SourceBatch(Generic[T]):
    """One batch read from a source, and the position to resume from after it."""

    items: Sequence[T]
    position: JsonObject | None
    """Where the next batch starts (JSON); None when this is the last batch of a pass."""


class SyncSource(Protocol[T]):
    """Where a sync reads from: batches from a resumable ``position``.

    ``position`` is None for the start of a pass, or a value a previous
    :class:`SourceBatch` gave. The iterator ends when the pass is complete.
    """

    def batches(self, position: JsonObject | None) -> AsyncIterator[SourceBatch[T]]: ...


@runtime_checkable
class CountedSource(Protocol):
    """A :class:`SyncSource` that can tell, after a pass, whether it read every item.

    ``unseen()`` is called once the iterator of ``batches`` is exhausted: 0 means the
    source proved that it yielded every item present for the whole run (e.g. its own
    total count matches what it read and verified); a positive answer is how many it
    could not confirm (at least 1 when it is in doubt without knowing how many), and
    makes the run incomplete instead of silently done.
    """

    def unseen(self) -> int: ...


@dataclass(frozen=True, slots=True)
class SyncItem:
    """One mapped item: its id in the source, the record to write and the event payload."""

    entity_id: str
    record: Mapping[str, Any]
    """Written to the sink; its fingerprint decides whether the item changed."""
    payload: Mapping[str, Any] | None = None
    """The event payload (the record when None)."""
    event: str | None = None
    """The event's verb when it is not ``created`` / ``updated`` by what the sync has
    seen: ``"deleted"`` for an item the source reports deleted (its record marks it so
    in the sink, e.g. a soft delete column)."""


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Where a running sync is, reported after every committed batch."""

    name: str
    batches: int
    seen: int
    created: int
    updated: int
    unchanged: int
    failed: int
    position: JsonObject | None


@dataclass(slots=True)
class SyncReport:
    """What one run of a sync did."""

    name: str
    resumed_from: JsonObject | None = None
    """The checkpoint position the run started from (None: the start of a pass)."""
    completed: bool = False
    """Whether a full pass is done with every item applied: the source was read to
    its end, the sink accepted every record of the pass (``failed == 0`` and
    ``failed_earlier == 0``) and the source confirmed it yielded every item present for
    the whole run (``unseen == 0``)."""
    reached_end: bool = False
    """Whether the run read the source to its end (True even when ``completed`` is not)."""
    batches: int = 0
    seen: int = 0
    """Items read, counted once per batch they came in (an item a source yields again,
    in a rescan or a read by id, counts again)."""
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    written: int = 0
    failed: int = 0
    """Records the sink rejected, or items the mapper could not map, in this run (not
    fingerprinted: the next pass retries them)."""
    failed_earlier: int = 0
    """Records rejected earlier in the same pass, by the run this one resumed."""
    unseen: int = 0
    """Items the source could not confirm it yielded (see :class:`CountedSource`); 0
    when it proved it read every item present for the whole run."""
    deleted: int = 0
    """Items the source reported deleted (``SyncItem.event == "deleted"``) and written."""
    events: int = 0
    errors: list[RecordError] = field(default_factory=list)
    """Why records failed: the sink's errors (``index`` in the batch written) and the
    mapper's (``index`` in the batch read, code ``serialization``)."""

    @property
    def partial(self) -> bool:
        """The source was read to its end, but some items were not applied, or the source
        could not prove it yielded them all (see ``completed``)."""
        return self.reached_end and not self.completed


ProgressCallback = Callable[[SyncProgress], Awaitable[None] | None]


def fingerprint(record: Mapping[str, Any]) -> str:
    """A stable SHA-256 of a record's content (key order does not matter).

    Raises SerializationError for a record that cannot be encoded (it refers to itself,
    or nests deeper than the JSON encoder can go)."""
    problem = ""
    try:
        text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    except RecursionError:
        problem = "nests too deeply"
    except (TypeError, ValueError) as exc:
        problem = str(exc)
    else:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    raise SerializationError(f"cannot fingerprint the record: {problem}")


class IncrementalSync(Generic[T]):
    """Sync a source into a :class:`~connector_core.Writable` sink, resumably.

    For every batch of the source: map each item to a :class:`SyncItem`, compare
    its fingerprint with the one stored for its id, write only new or changed
    records (the sink must upsert on the id, so a re-run never duplicates),
    publish ``<entity_type>.created`` / ``.updated`` events for what was written
    (``.deleted``, or another verb, for an item whose ``event`` says so),
    then checkpoint the batch's position together with the new fingerprints in
    one atomic :meth:`StateStore.put_many`. A crash or cancellation between
    write and checkpoint re-runs at most that one batch (writes are idempotent,
    events are at least once).

    Records the sink rejects (``WriteResult.errors``) are never applied silently:
    they get no event and no fingerprint (so the next pass writes them again), a
    WARNING names how many and the first errors, and the report's ``failed`` is
    set and ``completed`` is False for the whole pass (also for a run that resumes
    it). When the sink reports failures without saying which records, no record
    of that batch is fingerprinted and no event is published for it. A pass with
    failures ends with its checkpoint back at the start, so the next run retries.

    A :class:`CountedSource` whose ``unseen()`` is positive after the pass (it could
    not prove it yielded every item) makes the run incomplete in the same way.

    ``stamp_field`` (default ``synced_at``) is added to every written record with
    the time of the write; it is not part of the fingerprint.
    """

    def __init__(
        self,
        *,
        name: str,
        source: SyncSource[T],
        mapper: Callable[[T], SyncItem],
        sink: Writable,
        stream: str,
        publisher: EventPublisher,
        state: StateStore,
        source_system: str,
        entity_type: str,
        stamp_field: str | None = "synced_at",
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if not name or ":" in name:
            raise ValueError("sync name must be non-empty and contain no ':'")
        self.name = name
        self.source = source
        self.mapper = mapper
        self.sink = sink
        self.stream = stream
        self.publisher = publisher
        self.state = state
        self.source_system = source_system
        self.entity_type = entity_type
        self.stamp_field = stamp_field
        self.on_progress = on_progress

    @property
    def checkpoint_key(self) -> str:
        return f"{self.name}:checkpoint"

    def fingerprint_key(self, entity_id: str) -> str:
        return f"{self.name}:fp:{entity_id}"

    async def checkpoint(self) -> JsonObject | None:
        """The stored checkpoint (``position``, ``passes``, timestamps), or None."""
        return await self.state.get(self.checkpoint_key)

    async def run(self, *, correlation_id: str | None = None) -> SyncReport:
        """Run from the last checkpoint to the end of the source.

        Raises whatever the source, sink, publisher or state store raise (a
        ConnectorError for connectors), and SerializationError for a stored checkpoint
        this sync did not write; what was checkpointed before stays done.
        """
        position, passes, failed_earlier = await self._resume_point()
        report = SyncReport(name=self.name, resumed_from=position)
        if position is not None:
            report.failed_earlier = failed_earlier
            logger.info("sync %s resuming from %s", self.name, position)
        async for batch in self.source.batches(position):
            await self._process(batch, report, correlation_id, passes)
            position = batch.position
            if self.on_progress is not None:
                result = self.on_progress(
                    SyncProgress(
                        name=self.name,
                        batches=report.batches,
                        seen=report.seen,
                        created=report.created,
                        updated=report.updated,
                        unchanged=report.unchanged,
                        failed=report.failed,
                        position=position,
                    )
                )
                if inspect.isawaitable(result):
                    await result
        report.reached_end = True
        if isinstance(self.source, CountedSource):
            report.unseen = max(0, int(self.source.unseen()))
        failed = report.failed + report.failed_earlier
        report.completed = failed == 0 and report.unseen == 0
        final: JsonObject = {"position": None, "passes": passes + 1, "completed_at": _now_iso()}
        if not report.completed:
            # Back to the start: the next run is a new pass that retries what failed.
            final = {
                "position": None, "passes": passes, "incomplete_at": _now_iso(),
                "failed": failed, "unseen": report.unseen,
            }  # fmt: skip
        await self.state.put(self.checkpoint_key, final)
        if report.completed:
            logger.info(
                "sync %s complete: %d seen, %d created, %d updated, %d failed",
                self.name,
                report.seen,
                report.created,
                report.updated,
                report.failed,
            )
        else:
            logger.warning(
                "sync %s INCOMPLETE: %d seen, %d created, %d updated, %d failed in this run, "
                "%d failed earlier in the pass, %d never seen; the next run starts a new pass "
                "and retries them",
                self.name,
                report.seen,
                report.created,
                report.updated,
                report.failed,
                report.failed_earlier,
                report.unseen,
            )
        return report

    async def _resume_point(self) -> tuple[JsonObject | None, int, int]:
        """The stored checkpoint's position, passes and failures so far in the pass."""
        checkpoint = await self.checkpoint() or {}
        position = checkpoint.get("position")
        passes, failed = checkpoint.get("passes", 0), checkpoint.get("failed", 0)
        if (position is None or isinstance(position, dict)) and _is_count(passes, failed):
            return position, passes, failed
        raise SerializationError(
            f"sync {self.name}: the checkpoint {self.checkpoint_key!r} is not one this sync "
            "writes (position: an object or null; passes, failed: integers >= 0); delete it "
            "to start a new pass"
        )

    async def _process(
        self,
        batch: SourceBatch[T],
        report: SyncReport,
        correlation_id: str | None,
        passes: int,
    ) -> None:
        # Later duplicates of an id in one batch win (a page may repeat an item).
        mapped: dict[str, tuple[SyncItem, str]] = {}
        unmapped: list[RecordError] = []
        for index, raw in enumerate(batch.items):
            try:
                item = self.mapper(raw)
                mapped[item.entity_id] = (item, fingerprint(item.record))
            except SerializationError as exc:
                # One item that cannot be decoded or encoded must not stop the sync at this
                # batch on every run: it fails alone, like a record the sink rejects.
                unmapped.append(
                    RecordError(index=index, message=exc.message, code=ErrorCode.SERIALIZATION)
                )
        report.batches += 1
        report.seen += len(mapped) + len(unmapped)
        if unmapped:
            report.failed += len(unmapped)
            report.errors.extend(unmapped)
            logger.warning(
                "sync %s: %d items of batch %d could not be mapped (not applied; the next "
                "pass retries them); first: #%d %s",
                self.name, len(unmapped), report.batches, unmapped[0].index,
                unmapped[0].message,
            )  # fmt: skip
        fp_keys = {eid: self.fingerprint_key(eid) for eid in mapped}
        known = await self.state.get_many(list(fp_keys.values()))
        changed: list[tuple[SyncItem, str, bool]] = []
        for eid, (item, fp) in mapped.items():
            previous = known.get(fp_keys[eid])
            if previous is not None and previous.get("fp") == fp:
                report.unchanged += 1
                continue
            changed.append((item, fp, previous is None))

        commits: dict[str, Mapping[str, Any]] = {}
        if changed:
            stamp = datetime.now(UTC)
            records = []
            for item, _, _ in changed:
                record = dict(item.record)
                if self.stamp_field is not None:
                    record[self.stamp_field] = stamp
                records.append(record)
            result = await self.sink.write(self.stream, records)
            failed = {err.index for err in result.errors if 0 <= err.index < len(changed)}
            if result.failed > len(failed):
                # The sink does not say which records failed: trust none of the batch.
                failed = set(range(len(changed)))
            report.written += result.written
            report.failed += len(failed)
            report.errors.extend(result.errors)
            if failed:
                first = "; ".join(
                    f"#{err.index} key={err.key!r} {err.code}: {err.message}"
                    for err in result.errors[:3]
                )
                logger.warning(
                    "sync %s: the sink rejected %d of %d records of batch %d (not checkpointed "
                    "as synced; the next pass retries them); first errors: %s",
                    self.name,
                    len(failed),
                    len(changed),
                    report.batches,
                    first or "none given",
                )
            for index, (item, fp, is_new) in enumerate(changed):
                if index in failed:
                    continue
                verb = item.event or ("created" if is_new else "updated")
                await self.publisher.publish(
                    DomainEvent(
                        type=f"{self.entity_type}.{verb}",
                        source_system=self.source_system,
                        entity_type=self.entity_type,
                        entity_id=item.entity_id,
                        payload=dict(item.payload if item.payload is not None else item.record),
                        correlation_id=correlation_id,
                    )
                )
                report.events += 1
                if item.event == "deleted":
                    report.deleted += 1
                elif is_new:
                    report.created += 1
                else:
                    report.updated += 1
                commits[fp_keys[item.entity_id]] = {"fp": fp}
        commits[self.checkpoint_key] = {
            "position": batch.position,
            "passes": passes,
            "updated_at": _now_iso(),
            # Failures so far in this pass, so a resumed run still reports the pass incomplete.
            "failed": report.failed_earlier + report.failed,
        }
        await self.state.put_many(commits)


def _is_count(*values: Any) -> bool:
    return all(type(value) is int and value >= 0 for value in values)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()
