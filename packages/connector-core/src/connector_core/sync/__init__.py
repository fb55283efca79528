"""connector_core.sync: any Readable source into any Writable sink, resumably.

The engine (:class:`StreamSync`, :func:`sync_streams`), its progress and report types,
and the state-store port it checkpoints through with an in-memory and a JSON-file store
(the PostgreSQL store is connector-postgres's ``PostgresStateStore``). Import from here;
the ``_modules`` behind this file are private.
"""

from connector_core.sync._engine import (
    DeleteMode,
    ProgressCallback,
    StreamReport,
    StreamSync,
    SyncProgress,
    check_compatible,
    field_type_of,
)
from connector_core.sync._run import sync_streams
from connector_core.sync._state import (
    MAX_STATE_DEPTH,
    FileStateStore,
    InMemoryStateStore,
    JsonObject,
    StateStore,
    decode_state,
    state_value,
)

__all__ = [
    "MAX_STATE_DEPTH",
    "DeleteMode",
    "FileStateStore",
    "InMemoryStateStore",
    "JsonObject",
    "ProgressCallback",
    "StateStore",
    "StreamReport",
    "StreamSync",
    "SyncProgress",
    "check_compatible",
    "decode_state",
    "field_type_of",
    "state_value",
    "sync_streams",
]
