"""The public API changes only on purpose."""

from __future__ import annotations

import importlib
import re

import connector_core

EXPECTED = {
    "ENTRY_POINT_GROUP",
    "AuthenticationError",
    "BaseConnector",
    "Catalog",
    "CheckResult",
    "Checkpoint",
    "Checkable",
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
    "MAX_TIMEOUT",
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
    "USE_DEFAULT",
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
}


def test_exported_names_are_exactly_the_expected_set() -> None:
    assert set(connector_core.__all__) == EXPECTED
    assert len(connector_core.__all__) == len(EXPECTED)  # no duplicates


def test_every_exported_name_is_importable() -> None:
    module = importlib.import_module("connector_core")
    for name in connector_core.__all__:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from connector_core import *", namespace)
    assert set(EXPECTED) - {"__version__"} <= set(namespace)


def test_version_is_the_package_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", connector_core.__version__)
    assert connector_core.__version__ != "0.0.0"


def test_public_modules_are_private_behind_init() -> None:
    for name in connector_core.__all__:
        obj = getattr(connector_core, name)
        module = getattr(obj, "__module__", "connector_core")
        assert module.startswith(("connector_core", "typing", "collections")), (name, module)
