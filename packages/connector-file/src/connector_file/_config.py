"""FileConfig: the root directory, the formats, and the streams (files and globs) in it."""

from __future__ import annotations

import codecs
import csv
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from connector_core import (
    ConfigError,
    ConnectorConfig,
    FieldError,
    FieldType,
    SettingsModel,
    config_error,
)

MAX_CHUNK = 64 * 2**20
MAX_RECORD = 1024 * 2**20
GLOB_CHARACTERS = frozenset("*?[")


class FileFormat(StrEnum):
    """How records are laid out in a file."""

    NDJSON = "ndjson"
    """One JSON object per line (also called JSON Lines: ``.ndjson``, ``.jsonl``)."""
    CSV = "csv"
    """Comma-separated values (or another delimiter), with or without a header row."""
    JSON = "json"
    """One JSON array of objects."""


class Compression(StrEnum):
    """Whether files are compressed; ``auto`` goes by the extension (``.gz``)."""

    AUTO = "auto"
    GZIP = "gzip"
    NONE = "none"


WriteMode = Literal["append", "replace", "upsert"]
UnterminatedLine = Literal["hold", "read"]

EXTENSIONS: dict[str, FileFormat] = {
    ".ndjson": FileFormat.NDJSON,
    ".jsonl": FileFormat.NDJSON,
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.CSV,
    ".json": FileFormat.JSON,
}


def format_of(path: str) -> tuple[FileFormat | None, bool]:
    """The format a file name says (``.csv``, ``.ndjson.gz``, ...), and whether it is
    gzipped; None when the extension says nothing."""
    suffixes = [s.lower() for s in PurePosixPath(path).suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    if gzipped:
        suffixes.pop()
    return (EXTENSIONS.get(suffixes[-1]) if suffixes else None), gzipped


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot name files inside the root, or None. Never quotes the path."""
    if not path or not path.strip():
        return "must not be empty"
    if "\x00" in path:
        return "must not contain NUL characters"
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        return "must be relative to the root (no leading '/')"
    if ".." in PurePosixPath(path.replace("\\", "/")).parts:
        return "must stay inside the root (no '..' parts)"
    return None


class CsvSettings(SettingsModel):
    """How CSV files are read and written (the stdlib ``csv`` module's dialects)."""

    dialect: Literal["excel", "excel-tab", "unix"] = "excel"
    delimiter: str | None = Field(None, description="overrides the dialect's delimiter")
    quotechar: str | None = Field(None, description="overrides the dialect's quote character")
    header: bool = True
    """The first row names the fields; without it, ``fieldnames`` does."""
    fieldnames: tuple[str, ...] | None = None
    encoding: str = "utf-8"

    @field_validator("delimiter", "quotechar")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value in "\r\n"):
            raise ValueError("must be one character, not a line break")
        return value

    @field_validator("encoding")
    @classmethod
    def _ascii_compatible(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError("unknown encoding") from None
        probe = '\n\r,;\t"|'
        try:
            same = probe.encode(value) == probe.encode("ascii")
        except UnicodeError:
            same = False
        if not same:
            # Lines are found by their b"\n" before decoding: UTF-16 and the like would
            # split characters.
            raise ValueError("must be an ASCII-compatible encoding (utf-8, latin-1, cp1252...)")
        return value

    @model_validator(mode="after")
    def _names_without_header(self) -> CsvSettings:
        if not self.header and not self.fieldnames:
            # A ValueError, so that the enclosing config names the field ("csv").
            raise ValueError("fieldnames: give the field names when the files have no header")
        return self

    def dialect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``csv.reader``/``csv.writer``."""
        options: dict[str, Any] = {"dialect": self.dialect}
        if self.delimiter is not None:
            options["delimiter"] = self.delimiter
        if self.quotechar is not None:
            options["quotechar"] = self.quotechar
        return options

    def quote_character(self) -> str | None:
        """The quote character in effect (None when the dialect quotes nothing)."""
        dialect = csv.get_dialect(self.dialect)
        if dialect.quoting == csv.QUOTE_NONE:
            return None
        return self.quotechar or dialect.quotechar


class StreamSettings(SettingsModel):
    """One named stream: a file or a glob of files under the root. Settings left unset
    come from the :class:`FileConfig`."""

    path: str
    """A file or a glob (``exports/*.ndjson``, ``logs/**/*.csv.gz``) relative to the root."""
    format: FileFormat | None = None
    compression: Compression | None = None
    csv: CsvSettings | None = None
    primary_key: tuple[str, ...] | None = None
    cursor_field: str | None = None
    schema_hints: dict[str, FieldType] | None = None
    strict: bool | None = None
    unterminated_last_line: UnterminatedLine | None = None
    write_mode: WriteMode | None = None

    @field_validator("path")
    @classmethod
    def _inside_root(cls, value: str) -> str:
        problem = path_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class FileConfig(ConnectorConfig):
    """Where the files are and how they are laid out.

    Streams are either named in ``streams`` (a file or a glob each, with its own
    settings) or given to ``read()``/``write()`` as a path relative to ``root``; the
    settings here are the defaults of both. Every path is resolved inside ``root``.
    URL form: ``file:///data/exports?format=ndjson`` (query parameters set fields).
    """

    url_schemes: ClassVar[tuple[str, ...]] = ("file",)

    root: Path
    format: FileFormat | None = None
    """The format of files whose extension says none (``.ndjson``, ``.jsonl``, ``.csv``,
    ``.tsv``, ``.json``, each optionally ``.gz``, say it)."""
    compression: Compression = Compression.AUTO
    csv: CsvSettings = Field(default_factory=CsvSettings)
    primary_key: tuple[str, ...] = ()
    cursor_field: str | None = None
    schema_hints: dict[str, FieldType] = Field(default_factory=dict)
    """Field types to use instead of inferring them (``{"at": "datetime"}``)."""
    strict: bool = False
    """Raise SerializationError at the first malformed record instead of reporting it
    in ``reader.errors`` and going on."""
    unterminated_last_line: UnterminatedLine | None = None
    write_mode: WriteMode | None = None
    streams: dict[str, StreamSettings] = Field(default_factory=dict)
    infer_types: bool = True
    sample_size: int = Field(1000, ge=1, le=1_000_000)
    """Records read from the start of a stream to infer its field types."""
    chunk_size: int = Field(1 * 2**20, ge=4096, le=MAX_CHUNK)
    max_record_bytes: int = Field(16 * 2**20, ge=1024, le=MAX_RECORD)
    discover_files: bool = True
    fsync: bool = True

    @field_validator("root", mode="before")
    @classmethod
    def _usable_root(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            text = str(value)
            if not text or "\x00" in text:
                raise ValueError("must be a directory path (not empty, no NUL)")
            return Path(text).expanduser().absolute()
        return value

    @field_validator("streams")
    @classmethod
    def _named(cls, value: dict[str, StreamSettings]) -> dict[str, StreamSettings]:
        for name in value:
            if not name or "\x00" in name:
                raise ValueError("stream names must not be empty or hold NUL")
        return value

    @model_validator(mode="after")
    def _formats_known(self) -> FileConfig:
        problems: list[tuple[str, str]] = []
        for name, stream in self.streams.items():
            named = format_of(stream.path)[0] is not None
            glob = any(c in GLOB_CHARACTERS for c in stream.path)  # checked per file
            if stream.format is None and self.format is None and not named and not glob:
                problems.append(
                    (f"streams.{name}.format", "the path's extension names no format: give one")
                )
        if problems:
            raise config_error(type(self).__name__, problems)
        return self

    # -- URLs ---------------------------------------------------------------------------

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        """``file:///data/exports?format=ndjson&primary_key=id``: the path is ``root``,
        query parameters set fields (a comma list for ``primary_key``). Only a local
        host (none, or ``localhost``) is accepted."""
        title = f"invalid {cls.__name__}"
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise ConfigError(
                f"{title}: url: scheme must be file",
                errors=[FieldError("url", "scheme must be file")],
            )
        if parts.netloc not in ("", "localhost"):
            message = "must be a local path: file:///absolute/path"
            raise ConfigError(f"{title}: url: {message}", errors=[FieldError("url", message)])
        fields: dict[str, Any] = {}
        if parts.path:
            fields["root"] = unquote(parts.path)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "primary_key":
                fields[key] = tuple(p for p in value.split(",") if p)
            else:
                fields[key] = value
        return fields

    def connection_string(self, reveal: bool = False) -> str:
        return self.root.as_uri()
