"""connector_core.sync: any Readable source into any Writable sink, resumably.

The engine (:class:`StreamSync`, :func:`sync_streams`), its progress and report types,
:class:`SyncWorker` (several processes sharing the streams, each leased to one at a
time through a :class:`StreamLeases`; connector-postgres's ``AdvisoryLeases`` across
machines), and the state-store port it checkpoints through with an in-memory and a JSON-file store
(the PostgreSQL store is connector-postgres's ``PostgresStateStore``). Import from here;
the ``_modules`` behind this file are private.
"""

from connector_core.sync._engine import (
    BatchCallback,
    DeleteMode,
    ProgressCallback,
    StreamReport,
    StreamSync,
    SyncBatch,
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
from connector_core.sync._worker import (
    InMemoryLeases,
    RunCallback,
    StreamLeases,
    StreamRun,
    SyncWorker,
)

__all__ = [
    "MAX_STATE_DEPTH",
    "BatchCallback",
    "DeleteMode",
    "FileStateStore",
    "InMemoryLeases",
    "InMemoryStateStore",
    "JsonObject",
    "ProgressCallback",
    "RunCallback",
    "StateStore",
    "StreamLeases",
    "StreamReport",
    "StreamRun",
    "StreamSync",
    "SyncBatch",
    "SyncProgress",
    "SyncWorker",
    "check_compatible",
    "decode_state",
    "field_type_of",
    "state_value",
    "sync_streams",
]
