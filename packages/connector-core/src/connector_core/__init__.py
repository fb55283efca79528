"""connector-core: the contract every connector fulfils, and the machinery they share.

Import from here; the ``_modules`` behind this file are private.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from connector_core._base import BaseConnector, ConnectionState, RetryRule
from connector_core._circuit import CircuitBreaker, CircuitState
from connector_core._config import (
    MAX_TIMEOUT,
    CircuitBreakerSettings,
    ConnectorConfig,
    RateLimitSettings,
    RetrySettings,
    SettingsModel,
    check_local_file,
    check_secret_text,
    config_error,
)
from connector_core._defaults import USE_DEFAULT, UseDefault
from connector_core._driver_logs import DriverLogScrubber
from connector_core._errors import (
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    ConflictError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    ErrorCode,
    FieldError,
    InvalidRequestError,
    NotConnectedError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitedError,
    SchemaChangeError,
    SerializationError,
    ServiceUnavailableError,
    SyncWriteError,
)
from connector_core._events import EventInfo, LifecycleEvent
from connector_core._models import (
    Catalog,
    Checkpoint,
    CheckResult,
    FieldType,
    ForeignKey,
    Record,
    RecordError,
    SchemaChange,
    Stream,
    StreamField,
    WriteResult,
)
from connector_core._protocols import (
    Checkable,
    Connector,
    Deletable,
    Discoverable,
    Provisionable,
    Readable,
    Writable,
)
from connector_core._rate_limit import TokenBucket
from connector_core._redaction import (
    redact_url,
    scrub_exception,
    scrub_secrets,
    scrub_value,
    secret_forms,
)
from connector_core._registry import (
    ENTRY_POINT_GROUP,
    ConnectorNotInstalledError,
    available_schemes,
    connector_class,
    from_url,
    register,
    unregister,
)
from connector_core._retry import RetryPolicy
from connector_core._stats import LatencySummary, OperationStats, StatsSnapshot

try:
    __version__ = _version("connector-core")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_TIMEOUT",
    "USE_DEFAULT",
    "AuthenticationError",
    "BaseConnector",
    "Catalog",
    "CheckResult",
    "Checkable",
    "Checkpoint",
    "CircuitBreaker",
    "CircuitBreakerSettings",
    "CircuitOpenError",
    "CircuitState",
    "ConfigError",
    "ConflictError",
    "ConnectionFailedError",
    "ConnectionState",
    "Connector",
    "ConnectorConfig",
    "ConnectorError",
    "ConnectorNotInstalledError",
    "ConnectorTimeoutError",
    "Deletable",
    "Discoverable",
    "DriverLogScrubber",
    "ErrorCode",
    "EventInfo",
    "FieldError",
    "FieldType",
    "ForeignKey",
    "InvalidRequestError",
    "LatencySummary",
    "LifecycleEvent",
    "NotConnectedError",
    "NotFoundError",
    "OperationStats",
    "PermissionDeniedError",
    "Provisionable",
    "QueryError",
    "RateLimitSettings",
    "RateLimitedError",
    "Readable",
    "Record",
    "RecordError",
    "RetryPolicy",
    "RetryRule",
    "RetrySettings",
    "SchemaChange",
    "SchemaChangeError",
    "SerializationError",
    "ServiceUnavailableError",
    "SettingsModel",
    "StatsSnapshot",
    "Stream",
    "StreamField",
    "SyncWriteError",
    "TokenBucket",
    "UseDefault",
    "Writable",
    "WriteResult",
    "__version__",
    "available_schemes",
    "check_local_file",
    "check_secret_text",
    "config_error",
    "connector_class",
    "from_url",
    "redact_url",
    "register",
    "scrub_exception",
    "scrub_secrets",
    "scrub_value",
    "secret_forms",
    "unregister",
]
