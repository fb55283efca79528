"""The PostgreSQL data adapter: a PostgreSQL database as a business data source.

Which tables to expose (include/exclude glob patterns), how each maps to an entity
(columns to fields, coercions), incremental reads by an updated-at column or by
``xmin``, deletes by a soft-delete column; a managed client on connector-postgres and
a mock in memory, with the same reads and events. ``sync_table`` publishes a domain
event per change; ``connector_core.sync.StreamSync`` copies an exposed table into any
sink (the clients are Readable and Discoverable).

Needs the ``postgres`` extra: ``pip install 'connector-adapters[postgres]'``.
"""

try:
    import connector_postgres as _connector_postgres  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised in a clean venv by the tests
    raise ImportError(
        "connector_adapters.postgres_data needs the PostgreSQL connector: "
        "pip install 'connector-adapters[postgres]'"
    ) from _exc

from connector_adapters._integrations import Integration
from connector_adapters.postgres_data._client import ChangeReader, PostgresDataClient
from connector_adapters.postgres_data._config import (
    Coercion,
    ColumnMapping,
    Incremental,
    PostgresDataConfig,
    TableMapping,
)
from connector_adapters.postgres_data._managed import ManagedPostgresData
from connector_adapters.postgres_data._mapping import TableMap, coerce
from connector_adapters.postgres_data._mock import MockPostgresData
from connector_adapters.postgres_data._sync import SOURCE_SYSTEM, TableSource, sync_table

INTEGRATION = Integration(
    name="postgres_data",
    config_class=PostgresDataConfig,
    managed=ManagedPostgresData,
    mock=MockPostgresData,
    env_prefix="POSTGRES_DATA_",
)
"""How ``load_adapters`` builds the PostgreSQL data adapter (entry point ``postgres_data``)."""

__all__ = [
    "INTEGRATION",
    "SOURCE_SYSTEM",
    "ChangeReader",
    "Coercion",
    "ColumnMapping",
    "Incremental",
    "ManagedPostgresData",
    "MockPostgresData",
    "PostgresDataClient",
    "PostgresDataConfig",
    "TableMap",
    "TableMapping",
    "TableSource",
    "coerce",
    "sync_table",
]
