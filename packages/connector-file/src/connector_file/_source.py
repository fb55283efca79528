"""A file's bytes, chunk by chunk, through aiofiles (gzip undone on the way), from a
byte offset; every read one step on the connector's road."""

from __future__ import annotations

import os
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiofiles
from aiofiles.threadpool.binary import AsyncBufferedReader

from connector_core import InvalidRequestError, SerializationError
from connector_file._paths import NAME

T = TypeVar("T")
Road = Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]


def no_follow(path: str, flags: int) -> int:
    """``open()``'s opener: the last part of the (already resolved) path must not be a
    symbolic link, so one swapped in after the check is refused (ELOOP)."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))


def truncated(relative: str, offset: int, size: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"{relative!r} holds {size} bytes, fewer than the checkpoint's offset {offset}: "
        "it was truncated or replaced, so it is not append-only; read it by a cursor "
        "field, or start again without the checkpoint",
        connector=NAME,
    )


class FileSource:
    """The (decompressed) bytes of one file from ``start``, ``chunk`` bytes at a time."""

    def __init__(
        self,
        real: Path,
        relative: str,
        *,
        gzipped: bool,
        start: int,
        chunk: int,
        road: Road[Any],
    ) -> None:
        self._real = real
        self._relative = relative
        self._gzipped = gzipped
        self._start = start
        self._chunk = chunk
        self._road = road
        self._file: AsyncBufferedReader | None = None
        self._inflate: Any = None
        self._pending = b""  # compressed bytes the inflater has not taken yet
        self._eof = False
        self._fed = False  # the current inflater has taken bytes (a member has begun)

    async def open(self) -> None:
        async def opened() -> AsyncBufferedReader:
            handle = await aiofiles.open(self._real, "rb", buffering=0, opener=no_follow)
            try:
                if not self._gzipped and self._start:
                    size = os.fstat(handle.fileno()).st_size
                    if size < self._start:
                        raise truncated(self._relative, self._start, size)
                    await handle.seek(self._start)
            except BaseException:
                await handle.close()
                raise
            return handle  # type: ignore[return-value]  # buffering=0 is still binary

        self._file = await self._road(opened)
        if self._gzipped:
            self._inflate = zlib.decompressobj(wbits=31)
            await self._skip(self._start)

    async def _skip(self, count: int) -> None:
        skipped = 0
        while skipped < count:
            data = await self._inflated(min(self._chunk, count - skipped))
            if not data:
                raise truncated(self._relative, count, skipped)
            skipped += len(data)

    async def read(self) -> bytes:
        """The next chunk; b"" at the end of the file."""
        if self._gzipped:
            return await self._inflated(self._chunk)
        file = self._file
        assert file is not None
        data: bytes = await self._road(lambda: file.read(self._chunk))
        return data

    async def _inflated(self, most: int) -> bytes:
        file = self._file
        assert file is not None
        while True:
            inflate = self._inflate
            if inflate.unconsumed_tail:
                source = inflate.unconsumed_tail
            elif self._pending:
                source, self._pending = self._pending, b""
            elif self._eof:
                return b""
            else:
                source = await self._road(lambda: file.read(self._chunk))
                if not source:
                    self._eof = True
                    if self._fed:
                        raise SerializationError(
                            f"{self._relative!r}: the gzip data ends in the middle of a member",
                            connector=NAME,
                        )
                    return b""
            # At most ``most`` bytes out: a small compressed chunk may inflate to gigabytes.
            self._fed = True
            try:
                data: bytes = inflate.decompress(source, most)
            except zlib.error as exc:
                raise SerializationError(
                    f"{self._relative!r}: not valid gzip data ({exc})", connector=NAME
                ) from exc
            if inflate.eof:
                # A member ended; appends add members (gzip allows several).
                rest = inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=31)
                self._fed = False
                self._pending = rest
            if data:
                return data

    async def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            await file.close()
