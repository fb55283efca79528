"""Bytes to records, chunk by chunk: NDJSON lines, CSV rows (quoted line breaks kept
whole) and the elements of a JSON array, each with the byte offset just after it.

A decoder is fed the file's bytes in chunks and returns the records that are complete
in what it has seen; the rest waits for the next chunk. Memory is one chunk and one
record, whatever the file's size.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector_core import SerializationError
from connector_file._codec import loads
from connector_file._config import CsvSettings
from connector_file._types import Convert

NAME = "file"


@dataclass(frozen=True)
class RecordIssue:
    """A record that could not be read: which file, which line (1-based), the byte
    offset where it starts, and why. The read goes on after it unless strict."""

    path: str
    line: int
    offset: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}, line {self.line} (byte {self.offset}): {self.message}"


@dataclass
class Batch:
    """Records decoded from one chunk: ``ends[i]``/``lines[i]`` are the byte offset and
    the line count just after ``records[i]``; ``issues`` are (records before it, issue).
    ``end``/``end_line`` are the position after everything this batch consumed."""

    records: list[dict[str, Any]] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    issues: list[tuple[int, RecordIssue]] = field(default_factory=list)
    end: int = 0
    end_line: int = 0


class Decoder(Protocol):
    def feed(self, data: bytes) -> Batch: ...

    def finish(self, *, read_unterminated: bool) -> Batch: ...


def _too_long(path: str, line: int, offset: int, limit: int) -> SerializationError:
    return SerializationError(
        f"{path}, line {line} (byte {offset}): a record is longer than max_record_bytes "
        f"({limit}); raise it if such records are expected",
        connector=NAME,
    )


def _apply(record: dict[str, Any], convert: dict[str, Convert]) -> str | None:
    """Convert ``record``'s typed fields in place; the problem, or None."""
    for name, fn in convert.items():
        value = record.get(name)
        if value is None:
            continue
        try:
            record[name] = fn(value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            return f"field {name!r}: {exc}"
    return None


class LineDecoder:
    """NDJSON: one JSON object per line; blank lines are skipped."""

    def __init__(
        self,
        path: str,
        *,
        offset: int,
        line: int,
        convert: dict[str, Convert],
        max_record: int,
        parse: Callable[[bytes], Any] = loads,
    ) -> None:
        self._path = path
        self._offset = offset  # of the first byte not yet decoded
        self._line = line  # lines complete before it
        self._convert = convert
        self._max = max_record
        self._parse = parse
        self._rest = b""

    def feed(self, data: bytes) -> Batch:
        buffer = self._rest + data if self._rest else data
        cut = buffer.rfind(b"\n")
        if cut < 0:
            self._rest = buffer
            if len(buffer) > self._max:
                raise _too_long(self._path, self._line + 1, self._offset, self._max)
            return Batch(end=self._offset, end_line=self._line)
        self._rest = buffer[cut + 1 :]
        if len(self._rest) > self._max:
            raise _too_long(self._path, self._line + 1, self._offset + cut + 1, self._max)
        return self._decode(buffer[:cut].split(b"\n"), terminated=True)

    def finish(self, *, read_unterminated: bool) -> Batch:
        rest, self._rest = self._rest, b""
        if not rest or not read_unterminated:
            # Held back: an appender may not have finished it (the checkpoint stays
            # before it, so a later read gets the whole line).
            return Batch(end=self._offset, end_line=self._line)
        return self._decode([rest], terminated=False)

    def _decode(self, lines: list[bytes], *, terminated: bool) -> Batch:
        batch = Batch()
        records, ends, counts = batch.records, batch.ends, batch.lines
        parse, convert = self._parse, self._convert
        offset, line = self._offset, self._line
        newline = 1 if terminated else 0
        for raw in lines:
            start = offset
            offset += len(raw) + newline
            line += 1
            if not raw.strip():
                continue
            problem: str | None
            try:
                record = parse(raw)
            except ValueError as exc:  # json and orjson errors are ValueErrors
                problem = f"not valid JSON ({_short(exc)})"
            else:
                if type(record) is dict:
                    problem = _apply(record, convert) if convert else None
                    if problem is None:
                        records.append(record)
                        ends.append(offset)
                        counts.append(line)
                        continue
                else:
                    problem = f"a JSON {type(record).__name__}, not an object"
            batch.issues.append((len(records), RecordIssue(self._path, line, start, problem)))
        self._offset, self._line = offset, line
        batch.end, batch.end_line = offset, line
        return batch


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."


class CsvDecoder:
    """CSV rows as records keyed by the header (or ``fieldnames``). A quoted field may
    hold line breaks: rows are cut only where the quotes are balanced. Empty cells of
    typed (non-string) fields are nulls."""

    def __init__(
        self,
        path: str,
        *,
        offset: int,
        line: int,
        settings: CsvSettings,
        header: list[str] | None,
        convert: dict[str, Convert],
        max_record: int,
    ) -> None:
        self._path = path
        self._offset = offset
        self._line = line
        self._settings = settings
        self._options = settings.dialect_options()
        self._quote = (settings.quote_character() or "").encode()
        self._encoding = settings.encoding
        self._header = header if header is not None else self._given_names()
        self._convert = convert
        self._max = max_record
        self._rest = b""

    def _given_names(self) -> list[str] | None:
        names = self._settings.fieldnames
        return list(names) if names and not self._settings.header else None

    @property
    def header(self) -> list[str] | None:
        return self._header

    def feed(self, data: bytes) -> Batch:
        buffer = self._rest + data if self._rest else data
        lines = buffer.split(b"\n")
        # The last piece has no line break yet: it waits, with any row it continues.
        complete = self._balanced(lines[:-1])
        self._rest = b"\n".join(lines[complete:])
        if len(self._rest) > self._max:
            raise _too_long(self._path, self._line + 1, self._offset, self._max)
        return self._decode(lines[:complete], terminated=True)

    def finish(self, *, read_unterminated: bool) -> Batch:
        rest, self._rest = self._rest, b""
        if not rest or not read_unterminated:
            return Batch(end=self._offset, end_line=self._line)
        return self._decode(rest.split(b"\n"), terminated=False)

    def _balanced(self, lines: list[bytes]) -> int:
        """How many of ``lines`` make whole rows (every quoted field closed)."""
        if not self._quote:
            return len(lines)
        quote = self._quote
        whole = 0
        open_quotes = False
        for index, raw in enumerate(lines):
            if raw.count(quote) % 2:
                open_quotes = not open_quotes
            if not open_quotes:
                whole = index + 1
        return whole

    def _decode(self, lines: list[bytes], *, terminated: bool) -> Batch:
        batch = Batch()
        if not lines:
            batch.end, batch.end_line = self._offset, self._line
            return batch
        encoding = self._encoding
        sizes: list[int] = []
        texts: list[str] = []  # some are _Undecodable
        last = len(lines) - 1
        for index, raw in enumerate(lines):
            newline = terminated or index < last
            sizes.append(len(raw) + (1 if newline else 0))
            bad: str | None = None
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                text = raw.decode(encoding, errors="replace")
                bad = f"not valid {encoding} text ({exc.reason} at byte {exc.start})"
            if self._offset == 0 and index == 0 and text.startswith("\ufeff"):
                text = text[1:]  # a byte order mark
            texts.append(text + "\n" if newline else text)
            if bad is not None:
                texts[-1] = _Undecodable(texts[-1], bad)
        reader = csv.reader(texts, **self._options)
        offset, line = self._offset, self._line
        consumed = 0
        while True:
            start, first = offset, line + 1
            row: list[str] | None
            problem: str | None = None
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                row, problem = None, f"not a valid CSV row ({exc})"
            taken = reader.line_num - consumed
            offset += sum(sizes[consumed : consumed + taken])
            line += taken
            for text in texts[consumed : consumed + taken]:
                if problem is None and isinstance(text, _Undecodable):
                    problem = text.problem
            consumed += taken
            if problem is None and row is not None:
                if not row:
                    continue  # a blank line
                if self._header is None:
                    self._header = row  # the header row: not a record
                    continue
                record, problem = self._record(row)
                if record is not None:
                    batch.records.append(record)
                    batch.ends.append(offset)
                    batch.lines.append(line)
                    continue
            issue = RecordIssue(self._path, first, start, problem or "unreadable")
            batch.issues.append((len(batch.records), issue))
        self._offset, self._line = offset, line
        batch.end, batch.end_line = offset, line
        return batch

    def _record(self, row: list[str]) -> tuple[dict[str, Any] | None, str | None]:
        header = self._header
        assert header is not None
        if len(row) != len(header):
            return None, f"has {len(row)} fields, the header {len(header)}"
        record: dict[str, Any] = dict(zip(header, row, strict=True))
        convert = self._convert
        if not convert:
            return record, None
        for name in convert:
            if record.get(name) == "":
                record[name] = None
        problem = _apply(record, convert)
        return (None, problem) if problem is not None else (record, None)


class _Undecodable(str):
    """A line's text with the bytes that were not valid replaced, and why."""

    problem: str

    def __new__(cls, text: str, problem: str) -> _Undecodable:
        value = super().__new__(cls, text)
        value.problem = problem
        return value


_WHITESPACE = re.compile(r"[ \t\r\n]*")


class ArrayDecoder:
    """The objects of one JSON array, element by element. An element that is no object
    is an issue; JSON that is not valid cannot be resynchronised, so it ends the read
    with SerializationError (with its line and byte)."""

    def __init__(
        self, path: str, *, offset: int, line: int, convert: dict[str, Convert], max_record: int
    ) -> None:
        self._path = path
        self._offset = offset  # of the first byte not yet decoded
        self._line = line
        self._convert = convert
        self._max = max_record
        self._rest = b""
        # Where the parse stands: before "[", before the first element (or "]"), before
        # an element after a ",", after an element, after the "]".
        self._state = "start" if offset == 0 else "after"
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> Batch:
        return self._decode(self._rest + data if self._rest else data, eof=False)

    def finish(self, *, read_unterminated: bool) -> Batch:
        rest, self._rest = self._rest, b""
        batch = self._decode(rest, eof=True)
        if self._state == "start":
            raise self._invalid("no JSON array found", self._offset)
        if self._state != "done":
            raise self._invalid("the array is not closed with ']'", self._offset)
        return batch

    def _invalid(self, why: str, offset: int) -> SerializationError:
        return SerializationError(
            f"{self._path}, line {self._line + 1} (byte {offset}): {why}", connector=NAME
        )

    def _decode(self, buffer: bytes, *, eof: bool) -> Batch:
        batch = Batch()
        ascii_only = buffer.isascii()
        text = buffer.decode("utf-8", errors="surrogateescape")
        base = self._offset  # the absolute offset of buffer[0]
        at = 0  # in text
        byte_at = 0  # the same position in buffer
        size = len(text)
        while True:
            skipped = _WHITESPACE.match(text, at)
            assert skipped is not None
            end = skipped.end()
            self._line += text.count("\n", at, end)
            byte_at += end - at  # whitespace is one byte a character
            at = end
            if at >= size:
                break
            char = text[at]
            state = self._state
            if state == "start":
                if char != "[":
                    raise self._invalid(
                        "a JSON file must hold one array of objects", base + byte_at
                    )
                self._state = "first"
            elif state == "first" and char == "]":
                self._state = "done"
            elif state in ("first", "element"):
                try:
                    value, stop = self._decoder.raw_decode(text, at)
                except json.JSONDecodeError as exc:
                    if not eof:
                        break
                    raise self._invalid(f"not valid JSON ({_short(exc)})", base + byte_at) from None
                if stop == size and not eof:
                    break  # a number at the end of the chunk may go on
                piece = text[at:stop]
                length = stop - at if ascii_only else len(piece.encode("utf-8", "surrogateescape"))
                start_line, start = self._line + 1, base + byte_at
                self._line += piece.count("\n")
                byte_at += length
                at = stop
                self._state = "after"
                self._element(value, batch, start_line, start, base + byte_at)
                continue
            elif state == "after":
                if char == ",":
                    self._state = "element"
                elif char == "]":
                    self._state = "done"
                else:
                    raise self._invalid("expected ',' or ']' after an element", base + byte_at)
            else:
                raise self._invalid("data after the end of the array", base + byte_at)
            at += 1
            byte_at += 1
        self._rest = buffer[byte_at:]
        self._offset = base + byte_at
        if len(self._rest) > self._max:
            raise _too_long(self._path, self._line + 1, self._offset, self._max)
        batch.end, batch.end_line = self._offset, self._line
        return batch

    def _element(self, value: Any, batch: Batch, line: int, start: int, end: int) -> None:
        problem: str | None
        if type(value) is dict:
            problem = _apply(value, self._convert) if self._convert else None
            if problem is None:
                batch.records.append(value)
                batch.ends.append(end)
                batch.lines.append(self._line)
                return
        else:
            problem = f"a JSON {type(value).__name__}, not an object"
        batch.issues.append((len(batch.records), RecordIssue(self._path, line, start, problem)))
