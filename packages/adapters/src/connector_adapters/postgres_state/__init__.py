"""The PostgreSQL state store for syncs: ``PostgresStateStore`` (checkpoints and
fingerprints in a table). It is connector-postgres's, re-exported here under the name
adapters used before (``connector_adapters.postgres_state`` became this module so that
``connector_adapters.postgres_data``, the PostgreSQL data source, has its own name).

Needs the ``postgres`` extra: ``pip install 'connector-adapters[postgres]'``.
"""

try:
    from connector_postgres import PostgresStateStore, state_table_ddl
except ImportError as _exc:  # pragma: no cover - exercised in a clean venv by the tests
    raise ImportError(
        "connector_adapters.postgres_state needs the PostgreSQL connector: "
        "pip install 'connector-adapters[postgres]'"
    ) from _exc

__all__ = ["PostgresStateStore", "state_table_ddl"]
