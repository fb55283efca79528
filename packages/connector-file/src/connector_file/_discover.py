"""Discovery: the config's streams and the files under the root, with fields inferred
from a sample of each."""

from __future__ import annotations

from connector_core import Stream, StreamField
from connector_file._config import FileFormat
from connector_file._streams import StreamPlan


class FileStream(Stream):
    """A stream of ``discover()``: connector_core's :class:`~connector_core.Stream` with
    the path or glob it reads (relative to the root), its format (None: by each file's
    extension), how many files it matched and how many records the fields come from."""

    kind: str = "file"
    path: str
    format: FileFormat | None = None
    files: int = 0
    sampled: int = 0


def describe(
    plan: StreamPlan, fields: tuple[StreamField, ...], *, files: int, sampled: int
) -> FileStream:
    """The stream of ``plan``. A primary key or cursor field the config gives every
    path (not this stream by name) is kept only where the files have those fields."""
    names = {f.name for f in fields}
    primary_key = plan.primary_key
    cursor = plan.cursor_field
    if not plan.configured:
        if not set(primary_key) <= names:
            primary_key = ()
        if cursor is not None and cursor not in names:
            cursor = None
    return FileStream(
        name=plan.name,
        fields=fields,
        primary_key=primary_key,
        cursor_field=cursor,
        kind="glob" if plan.glob else "file",
        path=plan.pattern,
        format=plan.format,
        files=files,
        sampled=sampled,
    )
