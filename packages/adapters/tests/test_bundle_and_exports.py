"""load_adapters wiring and the public API of every module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from adapters_chatwoot_fake import TOKEN, FakeChatwoot

import connector_adapters
import connector_adapters.chatwoot
import connector_adapters.postgres_data
import connector_adapters.postgres_state
import connector_adapters.salesforce
from connector_adapters import (
    Adapters,
    Integration,
    integration_names,
    load_adapters,
    register_integration,
    unregister_integration,
)
from connector_adapters.chatwoot import ChatwootConfig, ManagedChatwoot, MockChatwoot
from connector_core import ConfigError


def test_mock_is_the_default_without_credentials() -> None:
    adapters = load_adapters(environ={})
    assert isinstance(adapters.chatwoot, MockChatwoot)
    assert adapters.chatwoot is adapters.chatwoot  # built once
    assert load_adapters({"chatwoot": {"account_id": 4}}).modes() == {"chatwoot": "mock"}


def test_managed_when_credentials_are_configured() -> None:
    adapters = load_adapters({"chatwoot": {"account_id": 2, "api_access_token": TOKEN}})
    assert isinstance(adapters.chatwoot, ManagedChatwoot)
    assert adapters.modes() == {"chatwoot": "managed"}
    forced = load_adapters(
        {"chatwoot": ChatwootConfig(account_id=2, api_access_token=TOKEN, mode="mock")}
    )
    assert isinstance(forced.chatwoot, MockChatwoot)


def test_environment_is_read_without_config() -> None:
    env = {"CHATWOOT_ACCOUNT_ID": "9", "CHATWOOT_API_ACCESS_TOKEN": TOKEN}
    adapters = load_adapters(environ=env)
    assert isinstance(adapters.chatwoot, ManagedChatwoot)
    assert adapters.chatwoot_config.account_id == 9


def test_bad_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="hubspot"):  # no such integration (yet)
        load_adapters({"hubspot": {}})
    with pytest.raises(ConfigError) as info:
        load_adapters({"chatwoot": {"account_id": -1, "api_access_token": TOKEN}})
    assert info.value.fields == ("account_id",)
    assert TOKEN not in str(info.value)


async def test_bundle_connects_and_disconnects_managed_clients(
    fake_chatwoot: FakeChatwoot,
) -> None:
    fake_chatwoot.backend.seed_contacts(2)
    config = {
        "chatwoot": {"base_url": fake_chatwoot.url, "account_id": 1, "api_access_token": TOKEN}
    }
    async with load_adapters(config) as adapters:
        assert isinstance(adapters, Adapters)
        page = await adapters.chatwoot.list_contacts()
        assert len(page.contacts) == 2
        client = adapters.chatwoot
        assert isinstance(client, ManagedChatwoot)
        assert client.http.is_connected
    assert not client.http.is_connected


def test_public_api_is_deliberate() -> None:
    assert set(connector_adapters.__all__) == {
        "ENTRY_POINT_GROUP", "Integration", "integration_names", "register_integration",
        "unregister_integration", "Adapters", "BatchEvents", "Contact", "CountedSource",
        "DomainEvent", "EventPublisher", "FileStateStore",
        "InMemoryEventPublisher", "InMemoryStateStore", "IncrementalSync", "JsonObject",
        "KafkaEventPublisher",
        "ProgressCallback", "SourceBatch", "SourceReference", "StateStore", "SyncItem",
        "SyncProgress", "SyncReport", "SyncSource", "__version__", "fingerprint",
        "load_adapters",
    }  # fmt: skip
    assert set(connector_adapters.chatwoot.__all__) == {
        "INTEGRATION", "CONTACTS_PER_PAGE", "CONTACTS_STREAM", "CONTACT_SORTS", "ChatwootClient",
        "ChatwootConfig", "ChatwootContact", "ChatwootContactInbox", "ChatwootContactSource",
        "ChatwootConversation", "ChatwootInbox", "ChatwootMessage", "ChatwootModel",
        "ContactPage", "ContactWebhook", "ConversationPage", "ConversationWebhook",
        "FilterCondition", "ManagedChatwoot", "MessageWebhook", "MockChatwoot",
        "MockChatwootServer", "OtherWebhook", "ToggleStatusResult", "WebhookEvent",
        "WebhookPayloadError",
        "WebhookSignatureMismatchError", "WebhookSignatureMissingError", "WebhookTimestampError",
        "WebhookVerificationError", "WebhookVerifier", "compute_signature", "contact_row",
        "contacts_table_ddl", "parse_webhook", "sync_contacts", "to_canonical_contact",
        "verify_signature",
    }  # fmt: skip
    assert set(connector_adapters.postgres_data.__all__) == {
        "INTEGRATION", "SOURCE_SYSTEM", "ChangeReader", "Coercion", "ColumnMapping",
        "Incremental", "ManagedPostgresData", "MockPostgresData", "PostgresDataClient",
        "PostgresDataConfig", "TableMap", "TableMapping", "TableSource", "coerce", "sync_table",
    }  # fmt: skip
    assert set(connector_adapters.postgres_state.__all__) == {
        "PostgresStateStore",
        "state_table_ddl",
    }
    assert set(connector_adapters.salesforce.__all__) == {
        "DEFAULT_API_VERSION", "INTEGRATION", "PRODUCTION_LOGIN_URL", "QUERY_BATCH_SIZE",
        "SANDBOX_LOGIN_URL", "SOAP_TYPES", "ApiUsage", "ClientCredentialsAuth", "DeletedRecord",
        "DeletedResult", "DescribeGlobal", "FieldDescribe", "JwtBearerAuth", "Like", "Limit",
        "ManagedSalesforce", "MockSalesforce", "QueryPage", "RecordAttributes",
        "RefreshTokenAuth", "SObjectDescribe", "SObjectSummary", "SalesforceAuth",
        "SalesforceClient", "SalesforceConfig", "SalesforceErrorItem", "SalesforceModel",
        "SalesforceRecord", "SalesforceStats", "SalesforceToken", "SaveResult", "Soql",
        "UpdatedResult", "UpsertResult", "describe_to_stream", "format_soql",
        "parse_limit_info", "portable_type", "salesforce_error", "soql_identifier",
        "soql_literal", "standard_describes",
        # composite and sObject collections
        "COLLECTION_CHUNK", "COMPOSITE_LIMIT", "CollectionWriteResult", "CompositeRequest",
        "CompositeResult", "CompositeSubrequest", "CompositeSubresponse", "Ref",
        # Bulk API 2.0
        "BulkFailure", "BulkJob", "BulkSuccess", "BulkUnprocessed", "csv_rows", "poll_job",
        "to_csv",
        # sync
        "DELETED_COLUMN", "SObjectSource", "sobject_columns", "sobject_table_ddl",
        "sync_sobject",
    }  # fmt: skip
    for module in (
        connector_adapters,
        connector_adapters.chatwoot,
        connector_adapters.postgres_data,
        connector_adapters.postgres_state,
        connector_adapters.salesforce,
    ):
        for name in module.__all__:
            assert hasattr(module, name), name


def test_partial_credentials_never_fall_back_to_the_mock() -> None:
    with pytest.raises(ConfigError) as info:
        load_adapters({"chatwoot": {"api_access_token": TOKEN}})
    assert info.value.fields == ("account_id",)
    assert TOKEN not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_adapters(environ={"CHATWOOT_API_ACCESS_TOKEN": TOKEN})
    assert info.value.fields == ("account_id",)


# -- the registry of integrations ----------------------------------------------------------


class Recorder:
    """A client that records its life; ``fail`` makes connect() raise."""

    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    async def connect(self) -> None:
        if self.fail:
            raise ConnectionError(f"{self.name} is down")
        self.log.append(f"connect {self.name}")

    async def disconnect(self) -> None:
        self.log.append(f"disconnect {self.name}")


class FakeConfig(ChatwootConfig):
    """Any config with ``is_managed`` will do; Chatwoot's is at hand."""


def _register(name: str, log: list[str], *, fail: bool = False) -> None:
    register_integration(
        Integration(
            name=name,
            config_class=FakeConfig,
            managed=lambda config: Recorder(name, log, fail),
            mock=lambda config: Recorder(name, log, fail),
        )
    )


@pytest.fixture
def log() -> Iterator[list[str]]:
    events: list[str] = []
    yield events
    for name in ("first", "second", "broken"):
        unregister_integration(name)


def test_salesforce_is_registered_and_mock_without_auth(fake_salesforce: object) -> None:
    from adapters_salesforce_fake import FakeSalesforce, managed_config

    from connector_adapters.salesforce import ManagedSalesforce, MockSalesforce

    assert "salesforce" in integration_names()
    assert isinstance(load_adapters({"salesforce": {}}).salesforce, MockSalesforce)
    assert isinstance(fake_salesforce, FakeSalesforce)
    config = managed_config(fake_salesforce)
    adapters = load_adapters({"salesforce": config})
    assert isinstance(adapters.salesforce, ManagedSalesforce)
    assert adapters.modes() == {"salesforce": "managed"}
    env = {"SALESFORCE_MODE": "mock", "SALESFORCE_API_VERSION": "61.0"}
    from_env = load_adapters(environ=env).salesforce
    assert isinstance(from_env, MockSalesforce)
    assert from_env.api_version == "61.0"


def test_chatwoot_comes_from_the_registry_not_from_the_bundle() -> None:
    assert "chatwoot" in integration_names()
    assert connector_adapters.chatwoot.INTEGRATION.name == "chatwoot"
    tree = ast.parse((Path(connector_adapters.__file__).parent / "_bundle.py").read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    code_words = [
        text
        for node in ast.walk(tree)
        for text in (
            [node.id] if isinstance(node, ast.Name)
            else [node.attr] if isinstance(node, ast.Attribute)
            else [node.name] if isinstance(node, ast.alias)
            else [node.value] if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings
            else []
        )
    ]  # fmt: skip
    assert not [w for w in code_words if "chatwoot" in w.lower()]


async def test_integrations_registered_at_run_time_are_wired(log: list[str]) -> None:
    _register("first", log)
    _register("second", log)
    async with load_adapters({"first": {}, "second": {}}) as adapters:
        assert isinstance(adapters.first, Recorder)
        assert adapters.client("second") is adapters.second
        assert adapters.modes() == {"first": "mock", "second": "mock"}
    assert log == ["connect first", "connect second", "disconnect second", "disconnect first"]


async def test_a_failed_connect_disconnects_the_ones_already_connected(log: list[str]) -> None:
    _register("first", log)
    _register("broken", log, fail=True)
    _register("second", log)
    adapters = load_adapters({"first": {}, "broken": {}, "second": {}})
    with pytest.raises(ConnectionError, match="broken is down"):
        async with adapters:
            pytest.fail("the bundle must not open with an integration down")
    assert log == ["connect first", "disconnect first"]


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no integration 'hubspot'"):
        load_adapters({}).hubspot  # noqa: B018
