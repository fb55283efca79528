"""The state-store port a sync checkpoints through, and its in-memory and JSON-file
implementations (the PostgreSQL one is connector-postgres's ``PostgresStateStore``)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from connector_core._errors import SerializationError

JsonObject = dict[str, Any]
"""A JSON object: the value type of a :class:`StateStore` entry."""


@runtime_checkable
class StateStore(Protocol):
    """Key/value store for sync checkpoints and fingerprints (values are JSON objects).

    ``put_many`` is atomic: after a crash either all of its entries are stored or
    none is. That is what lets a sync checkpoint a batch together with its
    fingerprints.
    """

    async def get(self, key: str) -> JsonObject | None:
        """The value stored under ``key``, or None."""
        ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, JsonObject]:
        """The values of those ``keys`` that exist."""
        ...

    async def put(self, key: str, value: Mapping[str, Any]) -> None:
        """Store ``value`` under ``key``. Raises SerializationError for non-JSON values."""
        ...

    async def put_many(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        """Store every entry atomically. Raises SerializationError for non-JSON values."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error when it does not exist)."""
        ...


MAX_STATE_DEPTH = 64
"""How deeply a state value may nest (checkpoints and fingerprints need 3 levels): far
below what Python's recursive copies and encoders can take, wherever they run."""


def _nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value``'s lists and maps nest more than ``limit`` levels (iterative, so a
    hostile value cannot exhaust the stack; a value that contains itself is too deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Any = ()
        if isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def state_value(key: str, value: object) -> JsonObject:
    """A deep, JSON-proven copy of ``value`` (so stores never share mutable state).

    Raises SerializationError for a value that is not a JSON object, or nests more than
    :data:`MAX_STATE_DEPTH` levels."""
    if not isinstance(value, Mapping):
        raise SerializationError(f"state value for {key!r} is not a JSON object")
    if _nests_deeper_than(value, MAX_STATE_DEPTH):
        raise SerializationError(
            f"state value for {key!r} nests more than {MAX_STATE_DEPTH} levels"
        )
    try:
        text = json.dumps(dict(value), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"state value for {key!r} is not JSON serializable: {exc}"
        ) from exc
    result: JsonObject = json.loads(text)
    return result


def decode_state(
    text: str | bytes, what: str, *, depth: int = MAX_STATE_DEPTH, advice: str = ""
) -> JsonObject:
    """``text`` as a JSON object nesting at most ``depth`` levels, or SerializationError
    naming ``what``, then ``advice`` (no part of the text is echoed or chained: it is
    stored data)."""
    problem = ""
    try:
        value = json.loads(text)
    except RecursionError:  # far deeper than any state the stores write
        problem = "is nested too deeply to decode"
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        problem = f"is not valid JSON ({type(exc).__name__} at {_where(exc)})"
    else:
        if not isinstance(value, dict):
            problem = "does not hold a JSON object"
        elif _nests_deeper_than(value, depth):
            problem = f"nests more than {depth} levels"
        else:
            return value
    raise SerializationError(f"{what} {problem}{advice}")


def _where(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno} column {exc.colno}"
    return f"byte {getattr(exc, 'start', '?')}"


class InMemoryStateStore:
    """A :class:`StateStore` in a dict; lost when the process ends."""

    def __init__(self) -> None:
        self._data: dict[str, JsonObject] = {}

    async def get(self, key: str) -> JsonObject | None:
        value = self._data.get(key)
        return copy.deepcopy(value) if value is not None else None

    async def get_many(self, keys: Sequence[str]) -> dict[str, JsonObject]:
        return {k: copy.deepcopy(self._data[k]) for k in keys if k in self._data}

    async def put(self, key: str, value: Mapping[str, Any]) -> None:
        self._data[key] = state_value(key, value)

    async def put_many(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        converted = {k: state_value(k, v) for k, v in items.items()}
        self._data.update(converted)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


class FileStateStore:
    """A :class:`StateStore` in one JSON file, replaced atomically on every change.

    Each change writes a temporary file in the same directory, fsyncs it, and
    ``os.replace``-s it over the old one (then fsyncs the directory), so a crash
    leaves either the old or the new file, never a torn one. Every write rewrites
    the whole file: fit for checkpoints and thousands of fingerprints, not millions
    (use the PostgreSQL store for those). A caller cancelled during a write gets
    its CancelledError once the file is written, and the store's memory matches the
    file (the change is stored), so a later write never drops it.

    Raises SerializationError when the file is not a JSON object store (not valid
    JSON, not an object of objects, nested too deeply).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()
        self._data: dict[str, JsonObject] | None = None

    def _load(self) -> dict[str, JsonObject]:
        if self._data is None:
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                raw = b"{}"
            what = f"state file {str(self.path)!r}"
            advice = "; restore it or delete it to start the sync over"
            data = decode_state(raw, what, depth=MAX_STATE_DEPTH + 1, advice=advice)
            bad = sorted(key for key, value in data.items() if not isinstance(value, dict))
            if bad:
                keys = ", ".join(map(repr, bad[:3]))
                raise SerializationError(
                    f"{what} holds values that are not objects ({keys}){advice}"
                )
            self._data = data
        return self._data

    def _write(self, data: dict[str, JsonObject]) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_directory(directory)

    async def _commit(self, changes: Mapping[str, JsonObject | None]) -> None:
        async with self._lock:
            current = dict(self._load())
            for key, value in changes.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
            # A thread keeps fsync from blocking the event loop; the lock keeps writes ordered.
            # A cancelled caller cannot stop the thread, so the write is shielded and waited
            # for: the lock stays held and memory matches the file whatever happens.
            write = asyncio.ensure_future(asyncio.to_thread(self._write, current))
            interrupted: asyncio.CancelledError | None = None
            while not write.done():
                try:
                    await asyncio.shield(write)
                except asyncio.CancelledError as exc:
                    interrupted = exc  # re-raised once the file is written (milliseconds)
            if not write.cancelled() and write.exception() is None:
                self._data = current
            if interrupted is not None:
                raise interrupted
            write.result()  # the write's own error, if any

    async def get(self, key: str) -> JsonObject | None:
        async with self._lock:
            value = self._load().get(key)
        return copy.deepcopy(value) if value is not None else None

    async def get_many(self, keys: Sequence[str]) -> dict[str, JsonObject]:
        async with self._lock:
            data = self._load()
            return {k: copy.deepcopy(data[k]) for k in keys if k in data}

    async def put(self, key: str, value: Mapping[str, Any]) -> None:
        await self._commit({key: state_value(key, value)})

    async def put_many(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        await self._commit({k: state_value(k, v) for k, v in items.items()})

    async def delete(self, key: str) -> None:
        await self._commit({key: None})


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
