"""connector-postgres: PostgreSQL through asyncpg, on connector_core's contract.

Pooling, transactions with savepoints, server-side streaming, binary COPY and upserts,
discovery, incremental reads, LISTEN/NOTIFY and stream leases (advisory locks) for sync
workers on several machines. Import from here; the ``_modules``
behind this file are private.
"""

from connector_postgres._catalog import Table
from connector_postgres._config import IsolationLevel, PostgresConfig, SslMode
from connector_postgres._connector import PostgresConnector, __version__
from connector_postgres._errors import TransactionRollbackError
from connector_postgres._identifiers import quote_ident
from connector_postgres._lease import AdvisoryLeases, lease_key
from connector_postgres._listen import Listener
from connector_postgres._read import ReadCheckpoint, RecordReader
from connector_postgres._results import ExecuteResult, Notification
from connector_postgres._schema import create_table_sql, sql_type
from connector_postgres._sql import is_read_only
from connector_postgres._state import PostgresStateStore, state_table_ddl
from connector_postgres._transaction import PostgresTransaction

__all__ = [
    "AdvisoryLeases",
    "ExecuteResult",
    "IsolationLevel",
    "Listener",
    "Notification",
    "PostgresConfig",
    "PostgresConnector",
    "PostgresStateStore",
    "PostgresTransaction",
    "ReadCheckpoint",
    "RecordReader",
    "SslMode",
    "Table",
    "TransactionRollbackError",
    "__version__",
    "create_table_sql",
    "is_read_only",
    "lease_key",
    "quote_ident",
    "sql_type",
    "state_table_ddl",
]
