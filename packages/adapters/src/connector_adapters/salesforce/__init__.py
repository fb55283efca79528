"""Salesforce: typed REST client (managed over HTTP, or mock in memory), SOQL with bound
values, describe and discover, composite requests, sObject collections, Bulk API 2.0,
and an incremental sync of an sObject into a table.

Needs the ``salesforce`` extra: ``pip install 'connector-adapters[salesforce]'``.
"""

try:
    import jwt as _jwt  # noqa: F401

    import connector_http as _connector_http  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised in a clean venv by the tests
    raise ImportError(
        "connector_adapters.salesforce needs the HTTP connector with JWT support: "
        "pip install 'connector-adapters[salesforce]'"
    ) from _exc

from connector_adapters._integrations import Integration
from connector_adapters.salesforce._bulk import (
    BulkFailure,
    BulkJob,
    BulkSuccess,
    BulkUnprocessed,
    csv_rows,
    poll_job,
    to_csv,
)
from connector_adapters.salesforce._catalog import SOAP_TYPES, describe_to_stream, portable_type
from connector_adapters.salesforce._client import QUERY_BATCH_SIZE, SalesforceClient
from connector_adapters.salesforce._composite import (
    COLLECTION_CHUNK,
    COMPOSITE_LIMIT,
    CollectionWriteResult,
    CompositeRequest,
    CompositeResult,
    CompositeSubrequest,
    CompositeSubresponse,
    Ref,
)
from connector_adapters.salesforce._config import (
    DEFAULT_API_VERSION,
    PRODUCTION_LOGIN_URL,
    SANDBOX_LOGIN_URL,
    ClientCredentialsAuth,
    JwtBearerAuth,
    RefreshTokenAuth,
    SalesforceAuth,
    SalesforceConfig,
)
from connector_adapters.salesforce._errors import salesforce_error
from connector_adapters.salesforce._login import SalesforceToken
from connector_adapters.salesforce._managed import (
    ManagedSalesforce,
    SalesforceStats,
    parse_limit_info,
)
from connector_adapters.salesforce._mock import MockSalesforce, standard_describes
from connector_adapters.salesforce._models import (
    ApiUsage,
    DeletedRecord,
    DeletedResult,
    DescribeGlobal,
    FieldDescribe,
    Limit,
    QueryPage,
    RecordAttributes,
    SalesforceErrorItem,
    SalesforceModel,
    SalesforceRecord,
    SaveResult,
    SObjectDescribe,
    SObjectSummary,
    UpdatedResult,
    UpsertResult,
)
from connector_adapters.salesforce._soql import (
    Like,
    Soql,
    format_soql,
    soql_identifier,
    soql_literal,
)
from connector_adapters.salesforce._sync import (
    DELETED_COLUMN,
    SObjectSource,
    sobject_columns,
    sobject_table_ddl,
    sync_sobject,
)

INTEGRATION = Integration(
    name="salesforce",
    config_class=SalesforceConfig,
    managed=ManagedSalesforce,
    mock=lambda config: MockSalesforce(api_version=config.api_version),
    env_prefix="SALESFORCE_",
)
"""How ``load_adapters`` builds Salesforce's clients (entry point ``salesforce``)."""

__all__ = [
    "COLLECTION_CHUNK",
    "COMPOSITE_LIMIT",
    "DEFAULT_API_VERSION",
    "DELETED_COLUMN",
    "INTEGRATION",
    "PRODUCTION_LOGIN_URL",
    "QUERY_BATCH_SIZE",
    "SANDBOX_LOGIN_URL",
    "SOAP_TYPES",
    "ApiUsage",
    "BulkFailure",
    "BulkJob",
    "BulkSuccess",
    "BulkUnprocessed",
    "ClientCredentialsAuth",
    "CollectionWriteResult",
    "CompositeRequest",
    "CompositeResult",
    "CompositeSubrequest",
    "CompositeSubresponse",
    "DeletedRecord",
    "DeletedResult",
    "DescribeGlobal",
    "FieldDescribe",
    "JwtBearerAuth",
    "Like",
    "Limit",
    "ManagedSalesforce",
    "MockSalesforce",
    "QueryPage",
    "RecordAttributes",
    "Ref",
    "RefreshTokenAuth",
    "SObjectDescribe",
    "SObjectSource",
    "SObjectSummary",
    "SalesforceAuth",
    "SalesforceClient",
    "SalesforceConfig",
    "SalesforceErrorItem",
    "SalesforceModel",
    "SalesforceRecord",
    "SalesforceStats",
    "SalesforceToken",
    "SaveResult",
    "Soql",
    "UpdatedResult",
    "UpsertResult",
    "csv_rows",
    "describe_to_stream",
    "format_soql",
    "parse_limit_info",
    "poll_job",
    "portable_type",
    "salesforce_error",
    "sobject_columns",
    "sobject_table_ddl",
    "soql_identifier",
    "soql_literal",
    "standard_describes",
    "sync_sobject",
    "to_csv",
]
