"""connector-file: NDJSON, CSV and JSON-array files on aiofiles, on connector_core's contract.

Streams are files or globs under one root directory (every path resolved inside it),
read in constant memory with byte-offset checkpoints (append-only files) or in cursor
order (rewritten files), written by whole lines or replaced atomically, discovered with
inferred types. Import from here; the ``_modules`` behind this file are private.
"""

from connector_file._config import (
    Compression,
    CsvSettings,
    FileConfig,
    FileFormat,
    StreamSettings,
)
from connector_file._connector import FileConnector, __version__
from connector_file._decode import RecordIssue
from connector_file._discover import FileStream
from connector_file._read import FileReader
from connector_file._streams import StreamPlan

__all__ = [
    "Compression",
    "CsvSettings",
    "FileConfig",
    "FileConnector",
    "FileFormat",
    "FileReader",
    "FileStream",
    "RecordIssue",
    "StreamPlan",
    "StreamSettings",
    "__version__",
]
