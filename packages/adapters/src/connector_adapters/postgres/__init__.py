"""PostgreSQL-backed ports: a StateStore in a table.

Needs the ``postgres`` extra: ``pip install 'connector-adapters[postgres]'``.
"""

try:
    import connector_postgres as _connector_postgres  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised in a clean venv by the tests
    raise ImportError(
        "connector_adapters.postgres needs the PostgreSQL connector: "
        "pip install 'connector-adapters[postgres]'"
    ) from _exc

from connector_adapters.postgres._state import PostgresStateStore, state_table_ddl

__all__ = ["PostgresStateStore", "state_table_ddl"]
