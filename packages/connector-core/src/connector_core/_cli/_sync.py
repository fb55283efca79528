"""``connector sync``: :class:`connector_core.sync.StreamSync` (the one sync engine) over
a JSON state file that names the sync it belongs to and is saved after every written
batch (decisions 0119, 0122)."""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connector_core._models import Checkpoint, RecordError, Stream
from connector_core._protocols import Readable, Writable
from connector_core.sync import StreamSync, SyncProgress
from connector_core.sync._state import state_value

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
    engine: dict[str, Any] = field(default_factory=dict)
    """What the engine keeps beside the checkpoint (the schema it saw), by key."""

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
            "engine": self.engine,
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
    engine = data.get("engine", {})
    if not isinstance(engine, dict) or not all(isinstance(v, dict) for v in engine.values()):
        raise SyncStateError(f"{path}: engine must be an object of objects")
    return SyncState(identity, checkpoint, records, runs, engine)


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
    created: bool = False
    added_fields: tuple[str, ...] = ()


class _StateFile:
    """The engine's StateStore over the state file: the checkpoint key is the file's
    ``checkpoint``, other keys go to its ``engine`` object; every change is saved."""

    def __init__(self, state: SyncState, path: Path | None, checkpoint_key: str) -> None:
        self._state, self._path, self._key = state, path, checkpoint_key

    async def get(self, key: str) -> dict[str, Any] | None:
        if key == self._key:
            checkpoint = self._state.checkpoint
            return None if checkpoint is None else {"position": checkpoint.model_dump(mode="json")}
        value = self._state.engine.get(key)
        return None if value is None else dict(value)

    async def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        found = {key: await self.get(key) for key in keys}
        return {key: value for key, value in found.items() if value is not None}

    async def put(self, key: str, value: Mapping[str, Any]) -> None:
        if key == self._key:
            self._state.checkpoint = Checkpoint.model_validate(value["position"])
        else:
            self._state.engine[key] = state_value(key, value)
        self._save()

    async def put_many(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        for key, value in items.items():
            await self.put(key, value)

    async def delete(self, key: str) -> None:
        if key == self._key:
            self._state.checkpoint = None
        else:
            self._state.engine.pop(key, None)
        self._save()

    def _save(self) -> None:
        if self._path is not None:
            save_state(self._path, self._state)


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
    """Copy the records of ``stream`` after ``state.checkpoint`` into ``sink_stream``
    with :class:`StreamSync`, ``batch_size`` at a time, the checkpoint saved after every
    batch the sink accepted whole (when ``state_path`` is given). The sink's table or
    collection is created from the source's stream when the sink can (Provisionable).
    Raises SyncWriteError when a batch has rejected records (its checkpoint is not
    saved, so the next run writes it again), and what the connectors raise."""
    outcome = SyncOutcome(resumed=state.checkpoint is not None)
    before = state.records
    done = 0

    def on_progress(progress: SyncProgress) -> None:
        nonlocal done
        on_batch(progress.records - done)
        done = progress.records
        state.records = before + done

    sync = StreamSync(
        source,
        stream.qualified_name,
        sink,
        target=sink_stream,
        name="cli",
        state=_StateFile(state, state_path, "cli:checkpoint"),
        batch_size=batch_size,
        read_options=read_kwargs(source, cursor_field),
        on_progress=on_progress,
    )
    assert sync.checkpoint_key == "cli:checkpoint"
    report = await sync.run()
    state.records = before + report.records
    state.runs += 1
    if state_path is not None:
        save_state(state_path, state)
    outcome.written, outcome.batches, outcome.seconds = (
        report.written,
        report.batches,
        report.elapsed,
    )
    outcome.created, outcome.added_fields = report.created, report.added_fields
    return outcome
