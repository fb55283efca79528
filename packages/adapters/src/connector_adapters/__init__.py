"""connector-adapters: business integrations composed from connectors.

Generic parts live here (ports, domain, the incremental sync, the bundle); each
integration is a subpackage whose connectors come with an extra:
``connector_adapters.chatwoot`` needs ``connector-adapters[chatwoot]``.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from connector_adapters._batch_events import BatchEvents
from connector_adapters._bundle import Adapters, load_adapters
from connector_adapters._domain import Contact, DomainEvent, SourceReference
from connector_adapters._integrations import (
    ENTRY_POINT_GROUP,
    Integration,
    integration_names,
    register_integration,
    unregister_integration,
)
from connector_adapters._kafka_publisher import KafkaEventPublisher
from connector_adapters._ports import (
    EventPublisher,
    FileStateStore,
    InMemoryEventPublisher,
    InMemoryStateStore,
    JsonObject,
    StateStore,
)
from connector_adapters._sync import (
    CountedSource,
    IncrementalSync,
    ProgressCallback,
    SourceBatch,
    SyncItem,
    SyncProgress,
    SyncReport,
    SyncSource,
    fingerprint,
)

try:
    __version__ = _version("connector-adapters")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapters",
    "BatchEvents",
    "Contact",
    "CountedSource",
    "DomainEvent",
    "EventPublisher",
    "FileStateStore",
    "InMemoryEventPublisher",
    "InMemoryStateStore",
    "IncrementalSync",
    "Integration",
    "JsonObject",
    "KafkaEventPublisher",
    "ProgressCallback",
    "SourceBatch",
    "SourceReference",
    "StateStore",
    "SyncItem",
    "SyncProgress",
    "SyncReport",
    "SyncSource",
    "__version__",
    "fingerprint",
    "integration_names",
    "load_adapters",
    "register_integration",
    "unregister_integration",
]
