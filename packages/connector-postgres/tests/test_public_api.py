import connector_postgres
from connector_core import connector_class


def test_exported_names_are_exactly_the_public_api() -> None:
    assert set(connector_postgres.__all__) == {
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
    }
    for name in connector_postgres.__all__:
        assert hasattr(connector_postgres, name)


def test_both_schemes_are_registered() -> None:
    assert connector_class("postgres") is connector_postgres.PostgresConnector
    assert connector_class("postgresql") is connector_postgres.PostgresConnector
