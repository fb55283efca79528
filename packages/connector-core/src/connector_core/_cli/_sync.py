"""``connector sync``: a small generic loop over ``read()`` and ``write()`` with a JSON
state file checkpointed after every written batch (decision 0119)."""

from __future__ import annotations

import inspect
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connector_core._models import Checkpoint, Record, RecordError, Stream
from connector_core._protocols import Readable, Writable

STATE_VERSION = 1


class SyncStateError(Exception):
    """The state file cannot be used (unreadable, or written for another sync)."""


class SyncBatchError(Exception):
    """The sink rejected records of a batch: nothing after the last checkpoint is saved."""

    def __init__(self, written_before: int, batch: int, errors: tuple[RecordError, ...]) -> None:
        first = "; ".join(f"#{e.index} {e.code.value}: {e.message}" for e in errors[:3])
        super().__init__(
            f"the sink rejected records of batch {batch} ({first or 'no reason given'}); "
            f"{written_before} records were written and checkpointed before it"
        )
        self.errors = errors


@dataclass(frozen=True, slots=True)
class SyncIdentity:
    """What a state file belongs to (URLs with their secrets masked)."""

    source: str
    stream: str
    sink: str
    sink_stream: str


@dataclass(slots=True)
class SyncState:
    """The state file: where the last written batch ended, and counts."""

    identity: SyncIdentity
    checkpoint: Checkpoint | None = None
    records: int = 0
    runs: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "source": self.identity.source,
            "stream": self.identity.stream,
            "sink": self.identity.sink,
            "sink_stream": self.identity.sink_stream,
            "checkpoint": (
                self.checkpoint.model_dump(mode="json") if self.checkpoint is not None else None
            ),
            "records": self.records,
            "runs": self.runs,
            "updated_at": datetime.now(UTC).isoformat(),
        }


def load_state(path: Path, identity: SyncIdentity) -> SyncState:
    """The state in ``path`` (a new one when the file does not exist). Raises
    SyncStateError when it is not a state file of this sync."""
    if not path.exists():
        return SyncState(identity)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SyncStateError(f"cannot read the state file {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise SyncStateError(f"{path} is not a connector sync state file (version 1)")
    theirs = SyncIdentity(
        source=str(data.get("source")),
        stream=str(data.get("stream")),
        sink=str(data.get("sink")),
        sink_stream=str(data.get("sink_stream")),
    )
    if theirs != identity:
        raise SyncStateError(
            f"{path} belongs to another sync ({theirs.source} {theirs.stream} -> "
            f"{theirs.sink} {theirs.sink_stream})"
        )
    raw = data.get("checkpoint")
    try:
        checkpoint = Checkpoint.model_validate(raw) if raw is not None else None
    except ValueError:
        raise SyncStateError(f"{path} holds a checkpoint that is not valid") from None
    records, runs = data.get("records", 0), data.get("runs", 0)
    if type(records) is not int or type(runs) is not int:
        raise SyncStateError(f"{path}: records and runs must be integers")
    return SyncState(identity, checkpoint, records, runs)


def save_state(path: Path, state: SyncState) -> None:
    """Write ``state`` atomically (a temporary file renamed over ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(state.to_json(), out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_kwargs(source: Readable, cursor_field: str | None) -> dict[str, Any]:
    """``cursor_field=`` for a connector whose ``read()`` takes it (PostgreSQL, MongoDB)."""
    if cursor_field is None:
        return {}
    parameters = inspect.signature(source.read).parameters
    return {"cursor_field": cursor_field} if "cursor_field" in parameters else {}


@dataclass(slots=True)
class SyncOutcome:
    written: int = 0
    batches: int = 0
    seconds: float = 0.0
    resumed: bool = False
    errors: list[RecordError] = field(default_factory=list)


async def run_sync(
    *,
    source: Readable,
    sink: Writable,
    stream: Stream,
    sink_stream: str,
    cursor_field: str | None,
    state: SyncState,
    state_path: Path | None,
    batch_size: int,
    on_batch: Callable[[int], None],
) -> SyncOutcome:
    """Copy the records of ``stream`` after ``state.checkpoint`` into ``sink_stream``,
    ``batch_size`` at a time, saving the checkpoint after every batch the sink accepted
    whole (when ``state_path`` is given). Raises SyncBatchError when a batch has rejected
    records (its checkpoint is not saved, so the next run writes it again), and what the
    connectors raise."""
    key_fields = tuple(k for k in stream.primary_key if k != cursor_field)
    outcome = SyncOutcome(resumed=state.checkpoint is not None)
    started = time.monotonic()
    batch: list[Record] = []

    async def flush() -> None:
        result = await sink.write(sink_stream, batch)
        if not result.ok:
            raise SyncBatchError(outcome.written, outcome.batches + 1, result.errors)
        state.checkpoint = Checkpoint.after(
            batch[-1], cursor_field=cursor_field, key_fields=key_fields
        )
        state.records += result.written
        outcome.written += result.written
        outcome.batches += 1
        if state_path is not None:
            save_state(state_path, state)
        on_batch(len(batch))
        batch.clear()

    reader = source.read(
        stream.qualified_name, since=state.checkpoint, **read_kwargs(source, cursor_field)
    )
    try:
        async for record in reader:
            batch.append(record)
            if len(batch) >= batch_size:
                await flush()
        if batch:
            await flush()
    finally:
        close = getattr(reader, "aclose", None)
        if close is not None:
            await close()
    state.runs += 1
    if state_path is not None:
        save_state(state_path, state)
    outcome.seconds = time.monotonic() - started
    return outcome
