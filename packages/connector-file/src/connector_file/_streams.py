"""What a stream name means: a stream of the config (a file or a glob with its own
settings) or a path under the root, with the config's settings as defaults."""

from __future__ import annotations

from dataclasses import dataclass

from connector_core import FieldType, InvalidRequestError
from connector_file._config import (
    Compression,
    CsvSettings,
    FileConfig,
    FileFormat,
    UnterminatedLine,
    WriteMode,
    format_of,
)
from connector_file._paths import NAME, is_glob, relative_path


@dataclass(frozen=True)
class StreamPlan:
    """A stream's settings, resolved: its path or glob relative to the root and how to
    read and write the files it names."""

    name: str
    pattern: str
    glob: bool
    configured: bool
    format: FileFormat | None
    compression: Compression
    csv: CsvSettings
    primary_key: tuple[str, ...]
    cursor_field: str | None
    hints: dict[str, FieldType]
    strict: bool
    unterminated: UnterminatedLine
    write_mode: WriteMode | None

    def file_format(self, relative: str) -> tuple[FileFormat, bool]:
        """The format and gzip-ness of one of the stream's files."""
        by_name, gzipped = format_of(relative)
        found = self.format or by_name
        if found is None:
            raise InvalidRequestError(
                f"the format of {relative!r} is unknown: name it .ndjson, .jsonl, .csv, "
                ".json (optionally .gz), or set format in the config",
                connector=NAME,
            )
        if self.compression is Compression.GZIP:
            gzipped = True
        elif self.compression is Compression.NONE:
            gzipped = False
        return found, gzipped


def plan_for(config: FileConfig, name: str, *, cursor_field: str | None = None) -> StreamPlan:
    """The plan of stream ``name``: the config's stream of that name, or the path
    ``name`` under the root (InvalidRequestError for one that leads out of it)."""
    settings = config.streams.get(name)
    if settings is None:
        pattern = relative_path(config.root, name)
        configured = False
        glob = False
    else:
        pattern = relative_path(config.root, settings.path)
        configured = True
        glob = is_glob(pattern)

    def pick(own: object, default: object) -> object:
        return default if own is None else own

    s = settings
    cursor = cursor_field or (s.cursor_field if s and s.cursor_field else config.cursor_field)
    hints = {**config.schema_hints, **(s.schema_hints or {} if s else {})}
    unterminated = (s.unterminated_last_line if s else None) or config.unterminated_last_line
    plan = StreamPlan(
        name=name,
        pattern=pattern,
        glob=glob,
        configured=configured,
        format=(s.format if s else None) or config.format,
        compression=(s.compression if s else None) or config.compression,
        csv=(s.csv if s else None) or config.csv,
        primary_key=s.primary_key if s and s.primary_key is not None else config.primary_key,
        cursor_field=cursor,
        hints=hints,
        strict=bool(pick(s.strict if s else None, config.strict)),
        # A file read by cursor is rewritten whole: its last line is complete. One
        # read by offset is appended to: its unterminated last line may be half-written.
        unterminated=unterminated or ("read" if cursor else "hold"),
        write_mode=(s.write_mode if s else None) or config.write_mode,
    )
    return plan
