"""Writes: records to bytes (whole lines, whole rows), appended under a lock with
rollback, or written to a temporary file in the same directory and renamed over the old
one (fsync of the file before, of the directory after): a reader sees the old file or
the new one, never a mix, and a crash leaves the old one whole (decision 0113)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import fcntl
import io
import itertools
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiofiles
import aiofiles.os

from connector_core import ErrorCode, RecordError
from connector_file._codec import dumps, loads
from connector_file._config import CsvSettings, FileFormat
from connector_file._types import text_of

T = TypeVar("T")
Road = Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]

BLOCK = 1 * 2**20
"""Encoded bytes gathered before each write."""

_fsync = aiofiles.os.wrap(os.fsync)


async def settled(awaitable: Awaitable[T]) -> T:
    """Await a thread's file operation; when cancelled, let it finish first (a write
    abandoned mid-way would go on after the cleanup that follows the cancellation)."""
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


async def opened(awaitable: Awaitable[Any]) -> Any:
    """Await a thread's ``open``; when cancelled, let it finish and close what it
    opened (or the file would stay open with nobody to close it)."""
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is None:
            await task.result().close()
        raise


def _refused(index: int, record: Any, key: Sequence[str], exc: BaseException) -> RecordError:
    value = None
    if isinstance(record, Mapping) and key:
        values = tuple(record.get(k) for k in key)
        value = values[0] if len(values) == 1 else values
    return RecordError(
        index=index,
        message=f"the record cannot be written: {type(exc).__name__}: {exc}",
        code=ErrorCode.SERIALIZATION,
        key=value,
    )


class Encoder:
    """Records to bytes in one format; refused records become RecordErrors."""

    def __init__(self, fmt: FileFormat, csv_settings: CsvSettings, header: list[str] | None):
        self.format = fmt
        self.header = header
        self._csv = csv_settings
        self._elements = 0  # JSON array elements written so far

    def start(self) -> bytes:
        """What a new file begins with (a CSV header row, a JSON array's '[')."""
        if self.format is FileFormat.CSV and self._csv.header and self.header is not None:
            return self._row(self.header)
        if self.format is FileFormat.JSON:
            return b"["
        return b""

    def end(self) -> bytes:
        return b"\n]\n" if self.format is FileFormat.JSON else b""

    def _row(self, cells: Sequence[str]) -> bytes:
        out = io.StringIO()
        csv.writer(out, **self._csv.dialect_options()).writerow(cells)
        return out.getvalue().encode(self._csv.encoding)

    def encode(self, record: Any) -> bytes:
        """One record's bytes; TypeError/ValueError when it cannot be written whole."""
        if not isinstance(record, Mapping):
            raise TypeError(f"a record must be a mapping, not {type(record).__name__}")
        if self.format is FileFormat.CSV:
            header = self.header
            assert header is not None
            unknown = [k for k in record if k not in header]
            if unknown:
                raise ValueError(
                    f"field(s) {', '.join(map(repr, unknown))} are not columns of the file "
                    f"({', '.join(header)}); write with mode='replace' or 'upsert' to add them"
                )
            return self._row([_cell(record.get(name)) for name in header])
        for name in record:
            if not isinstance(name, str):
                raise TypeError(f"field names must be strings, not {type(name).__name__}")
        line = dumps(dict(record))
        if self.format is FileFormat.NDJSON:
            return line + b"\n"
        self._elements += 1
        return (b"\n" if self._elements == 1 else b",\n") + line


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return dumps(value).decode("utf-8")
    return text_of(value)


def header_for(records: Iterable[Any], given: Sequence[str] | None = None) -> list[str]:
    """The CSV columns: ``given`` first, then every other field in order of appearance."""
    names = dict.fromkeys(given or ())
    for record in records:
        if isinstance(record, Mapping):
            names.update(dict.fromkeys(k for k in record if isinstance(k, str)))
    return list(names)


def encode_all(
    encoder: Encoder, records: Sequence[Any], key: Sequence[str], errors: list[RecordError]
) -> Iterable[bytes]:
    """The records' bytes in blocks of about BLOCK bytes; refused ones go to ``errors``."""
    block: list[bytes] = []
    size = 0
    for index, record in enumerate(records):
        try:
            data = encoder.encode(record)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            errors.append(_refused(index, record, key, exc))
            continue
        block.append(data)
        size += len(data)
        if size >= BLOCK:
            yield b"".join(block)
            block, size = [], 0
    if block:
        yield b"".join(block)


def key_text(record: Mapping[str, Any], key: Sequence[str]) -> tuple[str, ...] | None:
    """A record's key as comparable text (typed values and their written form agree)."""
    try:
        return tuple(_cell(record[k]) if not isinstance(record[k], str) else record[k] for k in key)
    except (KeyError, TypeError, ValueError):
        return None


def json_value(value: Any) -> Any:
    """``value`` as it reads back from JSON (a datetime becomes its ISO text)."""
    return loads(dumps(value))


# -- the file system part ---------------------------------------------------------------


async def _write(handle: Any, data: bytes) -> None:
    await settled(handle.write(data))


def temporary_path(target: Path) -> Path:
    """A hidden name beside ``target`` (same directory: same file system, so the rename
    is atomic) that globs and discovery skip."""
    return target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")


def _create(path: str, flags: int) -> int:
    # O_EXCL: never an existing file; 0o666 less the umask, like any new file.
    return os.open(path, flags | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)


async def _fsync_directory(directory: Path) -> None:
    def sync() -> None:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    await settled(aiofiles.os.wrap(sync)())


async def replace_file(
    target: Path,
    blocks: AsyncIterator[bytes],
    *,
    road: Road[Any],
    durable: bool,
    compress: Callable[[bytes], bytes] | None = None,
    flush: Callable[[], bytes] | None = None,
) -> None:
    """Write ``blocks`` to a temporary file beside ``target``, fsync it, rename it over
    ``target``, fsync the directory. On any failure or cancellation before the rename
    the temporary file is removed and ``target`` is untouched."""
    temporary = temporary_path(target)
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = os.stat(target).st_mode & 0o7777
    renamed = False
    try:
        handle = await road(lambda: opened(aiofiles.open(temporary, "wb", opener=_create)))
        try:
            async for data in blocks:
                if compress is not None:
                    data = compress(data)
                if data:
                    await road(partial(_write, handle, data))
            if flush is not None:
                tail = flush()
                if tail:
                    await road(lambda: settled(handle.write(tail)))
            await road(lambda: settled(handle.flush()))
            if mode is not None:
                os.chmod(handle.fileno(), mode)  # keep the old file's permissions
            if durable:
                await road(lambda: settled(_fsync(handle.fileno())))
        finally:
            await settled(handle.close())
        await road(lambda: settled(aiofiles.os.replace(temporary, target)))
        renamed = True
        if durable:
            await road(lambda: _fsync_directory(target.parent))
    finally:
        if not renamed:
            # Synchronous: it must happen even while the task is being cancelled.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)


async def append_file(
    target: Path,
    blocks: Iterable[bytes],
    *,
    road: Road[Any],
    durable: bool,
    start: Callable[[bool], bytes],
    compress: Callable[[bytes], bytes] | None = None,
    flush: Callable[[], bytes] | None = None,
) -> None:
    """Append ``blocks`` under an exclusive lock (``flock``: concurrent appenders take
    turns). ``start(new)`` gives what goes first (a header for a new file, a line break
    when the file's last line is unterminated). On a failure or cancellation the file
    is cut back to its size before, so only whole batches are ever appended."""
    handle = await road(lambda: opened(aiofiles.open(target, "a+b")))
    try:
        fd = handle.fileno()
        await road(lambda: settled(aiofiles.os.wrap(fcntl.flock)(fd, fcntl.LOCK_EX)))
        size = os.fstat(fd).st_size
        lead = start(size == 0)
        if size and compress is None:
            last = os.pread(fd, 1, size - 1)
            if last != b"\n":
                lead = b"\n" + lead  # end the unterminated line: ours start on their own
        done = False
        try:
            for data in itertools.chain([lead], blocks):
                if compress is not None:
                    data = compress(data)
                if data:
                    await road(partial(_write, handle, data))
            tail = flush() if flush is not None else b""
            if tail:
                await road(lambda: settled(handle.write(tail)))
            await road(lambda: settled(handle.flush()))
            if durable:
                await road(lambda: settled(_fsync(fd)))
            done = True
        finally:
            if not done:
                os.ftruncate(fd, size)  # nothing of this batch stays
    finally:
        await settled(handle.close())
