"""FileConnector: files under one root directory behind connector_core's lifecycle and
road. Every file operation (listing, each chunk read, each write, fsync, rename) is one
step of :meth:`BaseConnector.run`: timeout, error translation, stats."""

from __future__ import annotations

import dataclasses
import errno
import os
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_args

import aiofiles.os

from connector_core import (
    BaseConnector,
    Catalog,
    ConfigError,
    ConnectorError,
    ErrorCode,
    InvalidRequestError,
    NotConnectedError,
    Record,
    RecordError,
    SchemaChange,
    Stream,
    WriteResult,
)
from connector_file._config import FileConfig, FileFormat, WriteMode
from connector_file._discover import describe
from connector_file._errors import translate_error
from connector_file._paths import expand_glob, resolve_inside, walk_files
from connector_file._read import FileReader, ReadSettings
from connector_file._source import FileSource
from connector_file._streams import StreamPlan, plan_for
from connector_file._write import (
    Encoder,
    append_file,
    encode_all,
    header_for,
    key_text,
    replace_file,
)

try:
    __version__ = _version("connector-file")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

T = TypeVar("T")
_MODES = get_args(WriteMode)


class FileConnector(BaseConnector[FileConfig]):
    """NDJSON, CSV and JSON-array files under ``config.root``.

    ``read()`` streams a stream's records (a file, or a glob's files in path order) in
    constant memory with byte-offset checkpoints, or in (cursor, key) order for a
    stream with a cursor field; ``write()`` appends whole lines, or replaces (and
    upserts) atomically; ``discover()`` lists streams with inferred fields.

    Errors: InvalidRequestError (a path that leads out of the root, a glob written to,
    a bad ``since``), NotFoundError (no such file), PermissionDeniedError,
    SerializationError (strict mode, broken gzip or JSON array), ConnectionFailedError
    (the root itself is gone: transient, the connector reconnects), ServiceUnavailableError
    (I/O errors; a full disk is not transient), ConnectorTimeoutError.
    """

    name: ClassVar[str] = "file"
    version: ClassVar[str] = __version__
    config_class: ClassVar[type[FileConfig]] = FileConfig

    def __init__(self, config: FileConfig, **kwargs: Any) -> None:
        """Args: config, and BaseConnector's keyword arguments (retry_policy,
        rate_limiter, circuit_breaker, clock, sleep)."""
        super().__init__(config, **kwargs)
        self._root: Path | None = None
        # Stream -> the primary key ensure_stream gave a stream the config gives none.
        self._stream_keys: dict[str, tuple[str, ...]] = {}

    # -- driver hooks -------------------------------------------------------------------

    async def _connect(self) -> None:
        root = self.config.root

        def check() -> Path:
            if not os.path.isdir(root):
                if os.path.exists(root):
                    raise ConfigError(
                        f"the root {str(root)!r} is not a directory", connector=self.name
                    )
                os.stat(root / ".")  # FileNotFoundError: the root is not there (yet)
            return Path(os.path.realpath(root))

        self._root = await aiofiles.os.wrap(check)()

    async def _disconnect(self) -> None:
        self._root = None

    async def _ping(self) -> None:
        await aiofiles.os.stat(self.config.root / ".")

    def _translate_error(self, exc: BaseException) -> ConnectorError | None:
        return translate_error(exc, self.config.root)

    @property
    def root(self) -> Path:
        """The root directory, every symlink resolved (NotConnectedError before
        ``connect()``)."""
        if self._root is None:
            raise NotConnectedError(
                "not connected: call connect() or use 'async with' first", connector=self.name
            )
        return self._root

    # -- paths --------------------------------------------------------------------------

    def stream(self, name: str, *, cursor_field: str | None = None) -> StreamPlan:
        """How stream ``name`` is read and written: a stream of the config, or a path
        under the root. InvalidRequestError for a path that leads out of the root
        (``..``, an absolute path elsewhere), before anything is opened."""
        return plan_for(self.config, name, cursor_field=cursor_field)

    async def files(self, stream: str) -> list[str]:
        """The files stream ``stream`` reads now, relative to the root, in read order."""
        return [relative for relative, _ in await self._list_files(self.stream(stream))]

    async def _list_files(self, plan: StreamPlan) -> list[tuple[str, Path]]:
        def find() -> list[tuple[str, Path]]:
            root = self.root
            if plan.glob:
                return expand_glob(root, plan.pattern)
            real = resolve_inside(root, plan.pattern)
            os.stat(real)  # FileNotFoundError (or the root is gone)
            if real.is_dir():
                raise IsADirectoryError(errno.EISDIR, "a directory, not a file", plan.pattern)
            return [(plan.pattern, real)]

        return await self.run("read", aiofiles.os.wrap(find), idempotent=True)

    async def _open_source(
        self, real: Path, relative: str, gzipped: bool, start: int
    ) -> FileSource:
        source = FileSource(
            real,
            relative,
            gzipped=gzipped,
            start=start,
            chunk=self.config.chunk_size,
            road=self._read_step,
        )
        await source.open()
        return source

    async def _read_step(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await self.run("read", fn, retry=False)

    async def _write_step(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await self.run("write", fn, retry=False)

    # -- reading ------------------------------------------------------------------------

    def _settings(self, *, infer: bool | None = None, sample: int | None = None) -> ReadSettings:
        return ReadSettings(
            chunk=self.config.chunk_size,
            max_record=self.config.max_record_bytes,
            sample_size=sample or self.config.sample_size,
            infer=self.config.infer_types if infer is None else infer,
        )

    def read(
        self,
        stream: str,
        *,
        since: Any = None,
        limit: int | None = None,
        cursor_field: str | None = None,
    ) -> FileReader:
        """The records of ``stream`` (see :class:`FileReader`).

        Without a cursor field (the stream's, or ``cursor_field`` here) records come in
        file order (a glob's files sorted by path) and ``since`` is the
        ``reader.checkpoint`` of an earlier read: byte offsets per file, so a resumed
        read of append-only files returns exactly the lines added since. With one,
        records come in (cursor, primary key) order; ``since`` a Checkpoint is strictly
        after, a plain value inclusive. InvalidRequestError at once for a path that
        leads out of the root; NotFoundError (at the first step) for a missing file.
        """
        return FileReader(
            self.stream(stream, cursor_field=cursor_field),
            since=since,
            limit=limit,
            list_files=self._list_files,
            open_source=self._open_source,
            settings=self._settings(),
        )

    async def sample(self, stream: str, n: int = 10) -> list[Record]:
        """The first ``n`` records of ``stream`` (file order)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidRequestError("n must be an integer >= 0", connector=self.name)
        reader = FileReader(
            self.stream(stream),
            since=None,
            limit=n,
            list_files=self._list_files,
            open_source=self._open_source,
            settings=self._settings(),
            ordered=False,
        )
        if n == 0:
            await self._list_files(reader.plan)  # an unknown stream is still NotFound
            return []
        return [record async for record in reader]

    # -- discovery ----------------------------------------------------------------------

    async def discover(self) -> Catalog:
        """The config's streams, then (``discover_files``) every file under the root
        whose format is known, as :class:`FileStream` s: fields and portable types
        inferred from the first ``sample_size`` records, primary key and cursor field
        from the config."""
        plans = [self.stream(name) for name in self.config.streams]
        if self.config.discover_files:
            listed = await self.run("discover", aiofiles.os.wrap(lambda: walk_files(self.root)))
            for relative in listed:
                plan = self.stream(relative)
                try:
                    plan.file_format(relative)
                except InvalidRequestError:
                    continue  # not a file of a known format
                plans.append(plan)
        streams = []
        for plan in plans:
            reader = FileReader(
                plan,
                since=None,
                limit=self.config.sample_size,
                list_files=self._list_files,
                open_source=self._open_source,
                settings=self._settings(),
                ordered=False,
            )
            sampled = sum([1 async for _ in reader])
            files = len(await self._list_files(plan))
            streams.append(describe(plan, reader.fields, files=files, sampled=sampled))
        return Catalog(streams=tuple(streams))

    # -- writing ------------------------------------------------------------------------

    async def ensure_stream(self, name: str, schema: Stream) -> SchemaChange:
        """Make stream ``name`` ready for records of ``schema`` (a sync's sink, say):
        when the config gives the stream no primary key, it takes ``schema.primary_key``,
        so :meth:`write`'s default mode becomes ``upsert`` on that key and a batch written
        twice leaves one record per key. Nothing is written: the file appears with the
        first batch (``SchemaChange()``; CSV columns follow the records).

        Raises InvalidRequestError for a glob stream, a path outside the root or a file
        whose format is unknown (before any record is read)."""
        plan = self.stream(name)
        if plan.glob:
            raise InvalidRequestError(
                f"stream {name!r} is a glob ({plan.pattern}): a sink is one file",
                connector=self.name,
            )
        plan.file_format(plan.pattern)
        if not plan.primary_key:
            if schema.primary_key:
                self._stream_keys[name] = tuple(schema.primary_key)
            else:
                self._stream_keys.pop(name, None)
        return SchemaChange()

    async def write(
        self, stream: str, records: Iterable[Record], *, mode: WriteMode | None = None
    ) -> WriteResult:
        """Write ``records`` into the file of ``stream``.

        ``mode`` (default: the stream's ``write_mode``; without one, ``upsert`` when the
        stream has a primary key, else ``append``):

        * ``append``: whole lines added at the end, under an exclusive lock; on an
          error or cancellation the file is cut back, so nothing of the batch stays;
        * ``replace``: the records become the file's content, atomically (a temporary
          file in the same directory, fsync, rename, fsync of the directory);
        * ``upsert``: like replace, keeping the old records whose primary key the batch
          does not hold (a record given twice: the last one wins). The key is the
          stream's in the config, else the one :meth:`ensure_stream` gave it.

        A record that cannot be written (a value with no JSON or CSV form, a CSV field
        that is no column of the file) is a RecordError with its index; the others are
        written. ``written + failed == len(records)``. InvalidRequestError for a glob
        stream or a path outside the root.
        """
        plan = self.stream(stream)
        if plan.glob:
            raise InvalidRequestError(
                f"stream {stream!r} is a glob ({plan.pattern}): write to one file",
                connector=self.name,
            )
        if not plan.primary_key and stream in self._stream_keys:
            plan = dataclasses.replace(plan, primary_key=self._stream_keys[stream])
        chosen = mode or plan.write_mode or ("upsert" if plan.primary_key else "append")
        if chosen not in _MODES:
            raise InvalidRequestError(
                f"mode must be one of {', '.join(_MODES)}, not {chosen!r}", connector=self.name
            )
        if chosen == "upsert" and not plan.primary_key:
            raise InvalidRequestError(
                f"mode='upsert' needs a primary key: stream {stream!r} has none",
                connector=self.name,
            )
        batch = list(records)
        fmt, gzipped = plan.file_format(plan.pattern)
        real = resolve_inside(self.root, plan.pattern)
        await self.run("write", aiofiles.os.wrap(lambda: _make_parents(self.root, real)))
        errors: list[RecordError] = []
        if chosen == "append" and fmt is not FileFormat.JSON:
            await self._append(plan, real, fmt, gzipped, batch, errors)
        else:
            await self._rewrite(plan, real, fmt, gzipped, batch, errors, chosen)
        errors.sort(key=lambda e: e.index)
        return WriteResult(
            written=len(batch) - len(errors), failed=len(errors), errors=tuple(errors)
        )

    def _compression(self, gzipped: bool) -> tuple[Any, Any]:
        if not gzipped:
            return None, None
        deflate = zlib.compressobj(wbits=31)
        return deflate.compress, deflate.flush

    async def _existing_header(self, plan: StreamPlan, real: Path) -> list[str] | None:
        if not plan.csv.header:
            return list(plan.csv.fieldnames or ())
        try:
            size = (await self.run("write", lambda: aiofiles.os.stat(real))).st_size
        except ConnectorError as error:
            if error.code is ErrorCode.NOT_FOUND:
                return None
            raise
        if not size:
            return None
        reader = self._raw_reader(plan, limit=1)
        try:
            await anext(reader, None)
        finally:
            await reader.aclose()
        return [f.name for f in reader.fields] or None

    def _raw_reader(self, plan: StreamPlan, *, limit: int | None = None) -> FileReader:
        # The old records as stored (text stays text), every one or none (strict).
        raw = StreamPlan(**{**plan.__dict__, "hints": {}, "strict": True, "unterminated": "read"})
        return FileReader(
            raw,
            since=None,
            limit=limit,
            list_files=self._list_files,
            open_source=self._open_source,
            settings=self._settings(infer=False),
            ordered=False,
        )

    async def _append(
        self,
        plan: StreamPlan,
        real: Path,
        fmt: FileFormat,
        gzipped: bool,
        batch: list[Any],
        errors: list[RecordError],
    ) -> None:
        header = None
        if fmt is FileFormat.CSV:
            header = await self._existing_header(plan, real)
            if header is None:
                header = header_for(batch, plan.csv.fieldnames)
        encoder = Encoder(fmt, plan.csv, header)
        compress, flush = self._compression(gzipped)
        await append_file(
            real,
            encode_all(encoder, batch, plan.primary_key, errors),
            road=self._write_step,
            durable=self.config.fsync,
            start=lambda new: encoder.start() if new else b"",
            compress=compress,
            flush=flush,
        )

    async def _rewrite(
        self,
        plan: StreamPlan,
        real: Path,
        fmt: FileFormat,
        gzipped: bool,
        batch: list[Any],
        errors: list[RecordError],
        mode: str,
    ) -> None:
        key = plan.primary_key
        keep_old = mode != "replace" and await self.run("write", aiofiles.os.wrap(real.is_file))
        replaced: set[tuple[str, ...]] = set()
        if mode == "upsert":
            last: dict[tuple[str, ...], int] = {}
            for index, record in enumerate(batch):
                found = key_text(record, key) if isinstance(record, Mapping) else None
                if found is None:
                    errors.append(
                        RecordError(
                            index=index,
                            message=f"the record lacks the primary key {', '.join(key)}",
                            code=ErrorCode.INVALID_REQUEST,
                        )
                    )
                    continue
                last[found] = index
            replaced = set(last)
            superseded = {i for i in range(len(batch))} - set(last.values())
            superseded -= {e.index for e in errors}
        else:
            superseded = set()
        header = None
        if fmt is FileFormat.CSV:
            old = await self._existing_header(plan, real) if keep_old else None
            header = header_for(batch, old or plan.csv.fieldnames)
        encoder = Encoder(fmt, plan.csv, header)
        refused = {e.index for e in errors}
        fresh = [r for i, r in enumerate(batch) if i not in refused and i not in superseded]
        positions = [i for i in range(len(batch)) if i not in refused and i not in superseded]
        compress, flush = self._compression(gzipped)

        async def blocks() -> AsyncIterator[bytes]:
            yield encoder.start()
            if keep_old:
                pending: list[bytes] = []
                size = 0
                async for record in self._raw_reader(plan):
                    if replaced and key_text(record, key) in replaced:
                        continue
                    data = encoder.encode(record)
                    pending.append(data)
                    size += len(data)
                    if size >= 2**20:
                        yield b"".join(pending)
                        pending, size = [], 0
                if pending:
                    yield b"".join(pending)
            new_errors: list[RecordError] = []
            for data in encode_all(encoder, fresh, key, new_errors):
                yield data
            for error in new_errors:
                errors.append(error.model_copy(update={"index": positions[error.index]}))
            yield encoder.end()

        await replace_file(
            real,
            blocks(),
            road=self._write_step,
            durable=self.config.fsync,
            compress=compress,
            flush=flush,
        )


def _make_parents(root: Path, target: Path) -> None:
    """Create the directories above ``target`` under ``root``, never ``root`` itself (a
    root that is gone may be an unmounted share: writing there would fill the disk
    underneath)."""
    if not root.is_dir():
        os.stat(root / ".")  # FileNotFoundError: the root is not there
    target.parent.mkdir(parents=True, exist_ok=True)
