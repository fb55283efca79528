"""Reads of a stream: its files in a stable order, record by record, with a checkpoint.

Two ways to resume, one per kind of file (decision 0112):

* append-only files (a stream without a cursor field): records in file order, and a
  checkpoint of byte offsets, ``Checkpoint(cursor={"logs/a.ndjson": [offset, line]})``,
  the position after the last record handed out in each file. Streamed in constant
  memory; a resumed read starts at the offsets, so it neither re-reads nor skips a line,
  and an unterminated last line (an appender mid-write) is held back until it is whole.
* rewritten files (a stream with a cursor field): records in (cursor, key) order as
  connector_core's ``Readable`` says, a ``Checkpoint(cursor, key)`` strictly after, a
  plain value inclusive. Ordering needs every matching record at hand: memory grows with
  the records after ``since`` (with ``limit``, only that many are kept).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector_core import (
    Checkpoint,
    FieldType,
    InvalidRequestError,
    Record,
    SerializationError,
    StreamField,
)
from connector_file._config import FileFormat
from connector_file._decode import (
    ArrayDecoder,
    Batch,
    CsvDecoder,
    Decoder,
    LineDecoder,
    RecordIssue,
)
from connector_file._paths import NAME
from connector_file._source import FileSource
from connector_file._streams import StreamPlan
from connector_file._types import Convert, cast, converters, infer_fields

logger = logging.getLogger("connector.file")

ListFiles = Callable[[StreamPlan], Awaitable[list[tuple[str, Path]]]]
OpenSource = Callable[[Path, str, bool, int], Awaitable[FileSource]]

MAX_ISSUES = 1000
"""Issues kept in ``reader.issues``; ``reader.issue_count`` counts them all."""


@dataclass(frozen=True)
class ReadSettings:
    chunk: int
    max_record: int
    sample_size: int
    infer: bool


def _offsets_of(since: Any) -> dict[str, list[int]]:
    """The per-file positions of an offset checkpoint (values ``[offset, line]`` or a
    bare offset), checked."""
    cursor = since.cursor if isinstance(since, Checkpoint) else None
    if not isinstance(since, Checkpoint) or (cursor is not None and not isinstance(cursor, dict)):
        raise InvalidRequestError(
            "this stream has no cursor field: since must be a Checkpoint of file offsets "
            "(reader.checkpoint of an earlier read), or give the stream a cursor_field",
            connector=NAME,
        )
    positions: dict[str, list[int]] = {}
    for path, value in (cursor or {}).items():
        pair = [value, 0] if isinstance(value, int) else value
        if (
            not isinstance(path, str)
            or not isinstance(pair, list | tuple)
            or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pair)
        ):
            raise InvalidRequestError(
                f"checkpoint position of {path!r} must be [offset, line] (integers >= 0)",
                connector=NAME,
            )
        positions[path] = [pair[0], pair[1]]
    return positions


class FileReader(AsyncIterator[Record]):
    """The async iterator ``FileConnector.read()`` returns.

    ``checkpoint`` is the position after the last record handed out (the ``since``
    given, before the first); store ``checkpoint.model_dump_json()`` and pass
    ``Checkpoint.model_validate_json(...)`` as ``since`` to go on from there.
    ``issues`` lists the records that could not be read (file, line, byte offset,
    why; the first 1,000), ``issue_count`` counts them; with ``strict`` the first one
    raises SerializationError instead. ``fields`` are the stream's fields (inferred from
    the first ``sample_size`` records, or hinted), known once iteration has begun.
    """

    def __init__(
        self,
        plan: StreamPlan,
        *,
        since: Any,
        limit: int | None,
        list_files: ListFiles,
        open_source: OpenSource,
        settings: ReadSettings,
        ordered: bool = True,
    ) -> None:
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise InvalidRequestError("limit must be an integer >= 0", connector=NAME)
        self.plan = plan
        self._cursor = plan.cursor_field if ordered else None
        self._key = tuple(k for k in plan.primary_key if k != self._cursor)
        self._positions: dict[str, list[int]] = {}
        if self._cursor is None and since is not None:
            self._positions = _offsets_of(since)
        if self._cursor is not None and isinstance(since, Checkpoint):
            if isinstance(since.cursor, dict):
                raise InvalidRequestError(
                    f"stream {plan.name!r} is read by its cursor field {self._cursor!r}: "
                    "an offset checkpoint does not apply",
                    connector=NAME,
                )
            if since.key and len(since.key) != len(self._key):
                raise InvalidRequestError(
                    f"checkpoint key has {len(since.key)} values; the stream's key "
                    f"{self._key} has {len(self._key)}",
                    connector=NAME,
                )
        self._since = since
        self._limit = limit
        self._list_files = list_files
        self._open_source = open_source
        self._settings = settings
        self.issues: list[RecordIssue] = []
        self.issue_count = 0
        self.fields: tuple[StreamField, ...] = ()
        self._convert_json: dict[str, Convert] = {}
        self._convert_text: dict[str, Convert] = {}
        self._casts: dict[str, Convert | None] = {}
        self._pages: AsyncGenerator[tuple[str, Batch]] | None = None
        self._relative = ""
        self._page: list[dict[str, Any]] = []
        self._batch: Batch | None = None
        self._index = 0
        self._issue_at = 0
        self._last: dict[str, Any] | None = None
        self._moved = False
        self._given = 0
        self._done = limit == 0

    # -- the position -----------------------------------------------------------------

    @property
    def checkpoint(self) -> Checkpoint | None:
        """Where the next read goes on: after the last record handed out."""
        if self._cursor is not None:
            if self._last is None:
                return self._since if isinstance(self._since, Checkpoint) else None
            return Checkpoint.after(self._last, cursor_field=self._cursor, key_fields=self._key)
        if not self._moved:
            return self._since if isinstance(self._since, Checkpoint) else None
        positions = dict(self._positions)
        batch = self._batch
        if batch is not None and self._index:
            last = self._index - 1
            positions[self._relative] = [batch.ends[last], batch.lines[last]]
        return Checkpoint(cursor=positions)

    # -- iteration --------------------------------------------------------------------

    def __aiter__(self) -> FileReader:
        return self

    async def __anext__(self) -> Record:
        if self._done:
            raise StopAsyncIteration
        if self._pages is None:
            self._pages = await self._start()
        while self._index >= len(self._page):
            self._end_of_page()
            try:
                self._relative, page = await anext(self._pages)
            except StopAsyncIteration:
                self._done = True
                raise
            self._batch, self._page = page, page.records
            self._index = self._issue_at = 0
        index = self._index
        batch = self._batch
        if batch is not None and self._issue_at < len(batch.issues):
            self._issues_before(index)
        record = self._page[index]
        self._index = index + 1
        self._last = record
        self._moved = True
        self._given += 1
        if self._limit is not None and self._given >= self._limit:
            await self.aclose()  # the open file is closed now, not when collected
        return record

    def _issues_before(self, index: int) -> None:
        batch = self._batch
        assert batch is not None
        issues = batch.issues
        while self._issue_at < len(issues) and issues[self._issue_at][0] <= index:
            self._report(issues[self._issue_at][1])
            self._issue_at += 1

    def _end_of_page(self) -> None:
        batch = self._batch
        if batch is None:
            return
        self._issues_before(len(batch.records))
        if self._cursor is None:
            self._positions[self._relative] = [batch.end, batch.end_line]
            self._moved = True
        self._batch, self._page, self._index = None, [], 0

    async def _start(self) -> AsyncGenerator[tuple[str, Batch]]:
        files = await self._list_files(self.plan)
        self.fields = await self._infer(files)
        self._convert_json = converters(self.fields, text=False)
        self._convert_text = converters(self.fields, text=True)
        self._casts = {f.name: _since_cast(f.type) for f in self.fields}
        if self._cursor is None:
            return self._streamed(files)
        return _one(await self._ordered(files))

    async def _streamed(self, files: list[tuple[str, Path]]) -> AsyncGenerator[tuple[str, Batch]]:
        for relative, real in files:
            start = self._positions.get(relative, [0, 0])
            batches = self._batches(relative, real, start=(start[0], start[1]))
            try:
                async for batch in batches:
                    yield relative, batch
            finally:
                # Closed with this generator (a limited read's aclose()), not left to the
                # loop's finalizer, which may run after the file object was collected.
                await batches.aclose()

    # -- schema -----------------------------------------------------------------------

    async def _infer(self, files: list[tuple[str, Path]]) -> tuple[StreamField, ...]:
        sample: list[dict[str, Any]] = []
        text = False
        want = self._settings.sample_size
        for relative, real in files:
            fmt, _ = self.plan.file_format(relative)
            text = text or fmt is FileFormat.CSV
            batches = self._batches(relative, real, start=(0, 0), convert=False)
            try:
                async for batch in batches:
                    sample.extend(batch.records[: want - len(sample)])
                    if len(sample) >= want:
                        break
            finally:
                await batches.aclose()
            if len(sample) >= want:
                break
        return infer_fields(sample, text=text, hints=self.plan.hints, infer=self._settings.infer)

    # -- bytes to batches -------------------------------------------------------------

    def _decoder(
        self,
        relative: str,
        fmt: FileFormat,
        start: tuple[int, int],
        convert: bool,
        header: list[str] | None,
    ) -> Decoder:
        offset, line = start
        max_record = self._settings.max_record
        if fmt is FileFormat.CSV:
            return CsvDecoder(
                relative,
                offset=offset,
                line=line,
                settings=self.plan.csv,
                header=header,
                convert=self._convert_text if convert else {},
                max_record=max_record,
            )
        table = self._convert_json if convert else {}
        if fmt is FileFormat.NDJSON:
            return LineDecoder(
                relative, offset=offset, line=line, convert=table, max_record=max_record
            )
        return ArrayDecoder(
            relative, offset=offset, line=line, convert=table, max_record=max_record
        )

    async def _header(self, relative: str, real: Path, gzipped: bool) -> list[str] | None:
        """A CSV file's header row, read from its start (a resumed read needs it)."""
        decoder = CsvDecoder(
            relative,
            offset=0,
            line=0,
            settings=self.plan.csv,
            header=None,
            convert={},
            max_record=self._settings.max_record,
        )
        source = await self._open_source(real, relative, gzipped, 0)
        try:
            while decoder.header is None:
                data = await source.read()
                if not data:
                    decoder.finish(read_unterminated=True)
                    break
                decoder.feed(data)
        finally:
            await source.close()
        return decoder.header

    async def _batches(
        self, relative: str, real: Path, *, start: tuple[int, int], convert: bool = True
    ) -> AsyncGenerator[Batch]:
        fmt, gzipped = self.plan.file_format(relative)
        header = None
        if fmt is FileFormat.CSV and start[0] and self.plan.csv.header:
            header = await self._header(relative, real, gzipped)
        decoder = self._decoder(relative, fmt, start, convert, header)
        hold = self.plan.unterminated != "read"
        source = await self._open_source(real, relative, gzipped, start[0])
        try:
            while True:
                data = await source.read()
                if not data:
                    yield decoder.finish(read_unterminated=not hold)
                    return
                yield decoder.feed(data)
        finally:
            await source.close()

    # -- issues -----------------------------------------------------------------------

    def _report(self, issue: RecordIssue) -> None:
        if self.plan.strict:
            raise SerializationError(
                f"stream {self.plan.name!r}: {issue} (strict mode)", connector=NAME
            )
        self.issue_count += 1
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(issue)
        logger.warning("stream %r: skipped a record: %s", self.plan.name, issue)

    # -- rewritten files: (cursor, key) order -----------------------------------------

    async def _ordered(self, files: list[tuple[str, Path]]) -> Batch:
        cursor = self._cursor
        assert cursor is not None
        key = self._key
        since = self._since
        after: tuple[Any, ...] | None = None
        at_least: Any = None
        if isinstance(since, Checkpoint):
            after = (
                self._cast(cursor, since.cursor),
                *(self._cast(k, v) for k, v in zip(key, since.key, strict=False)),
            )
        elif since is not None:
            at_least = self._cast(cursor, since)
        kept: list[tuple[tuple[Any, ...], int, dict[str, Any]]] = []
        for relative, real in files:
            async for batch in self._batches(relative, real, start=(0, 0)):
                self._batch = batch
                for index, record in enumerate(batch.records):
                    self._issues_before(index)
                    value = record.get(cursor)
                    if value is None:
                        continue  # no cursor: it cannot be placed against a checkpoint
                    try:
                        position = (value, *[record[k] for k in key])
                    except KeyError as missing:
                        self._report(
                            RecordIssue(
                                relative,
                                batch.lines[index],
                                -1,
                                f"lacks key field {missing.args[0]!r}",
                            )
                        )
                        continue
                    try:
                        if after is not None and position[: len(after)] <= after:
                            continue
                        if at_least is not None and value < at_least:
                            continue
                    except TypeError:
                        raise self._incomparable() from None
                    kept.append((position, len(kept), record))
                self._issues_before(len(batch.records))
                self._batch, self._issue_at = None, 0
        try:
            if self._limit is not None:
                chosen = heapq.nsmallest(self._limit, kept)
            else:
                kept.sort()
                chosen = kept
        except TypeError:
            raise self._incomparable() from None
        return Batch(records=[record for _, _, record in chosen])

    def _incomparable(self) -> InvalidRequestError:
        return InvalidRequestError(
            f"stream {self.plan.name!r}: values of cursor field {self._cursor!r} (or of "
            "its key) cannot be compared: mixed types (give the field a schema hint)",
            connector=NAME,
        )

    def _cast(self, field: str, value: Any) -> Any:
        try:
            return cast(value, self._casts.get(field))
        except (ValueError, TypeError) as exc:
            raise InvalidRequestError(
                f"since: {value!r} is not a value of field {field!r} ({exc})", connector=NAME
            ) from None

    async def aclose(self) -> None:
        """Stop reading; the open file is closed."""
        self._done = True
        pages = self._pages
        if pages is not None:
            await pages.aclose()


def _since_cast(kind: FieldType) -> Convert | None:
    return converters((StreamField(name="_", type=kind),), text=True).get("_")


async def _one(batch: Batch) -> AsyncGenerator[tuple[str, Batch]]:
    yield "", batch
