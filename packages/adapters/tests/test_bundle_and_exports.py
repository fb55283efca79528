"""load_adapters wiring and the public API of every module."""

from __future__ import annotations

import pytest
from adapters_chatwoot_fake import TOKEN, FakeChatwoot

import connector_adapters
import connector_adapters.chatwoot
import connector_adapters.postgres
from connector_adapters import Adapters, load_adapters
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
    with pytest.raises(ConfigError, match="salesforce"):
        load_adapters({"salesforce": {}})
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
        "Adapters", "Contact", "CountedSource", "DomainEvent", "EventPublisher", "FileStateStore",
        "InMemoryEventPublisher", "InMemoryStateStore", "IncrementalSync", "JsonObject",
        "ProgressCallback", "SourceBatch", "SourceReference", "StateStore", "SyncItem",
        "SyncProgress", "SyncReport", "SyncSource", "__version__", "fingerprint",
        "load_adapters",
    }  # fmt: skip
    assert set(connector_adapters.chatwoot.__all__) == {
        "CONTACTS_PER_PAGE", "CONTACT_COLUMNS", "CONTACT_SORTS", "ChatwootClient",
        "ChatwootConfig", "ChatwootContact", "ChatwootContactInbox", "ChatwootContactSource",
        "ChatwootConversation", "ChatwootInbox", "ChatwootMessage", "ChatwootModel",
        "ContactPage", "ContactWebhook", "ConversationPage", "ConversationWebhook",
        "FilterCondition", "ManagedChatwoot", "MessageWebhook", "MockChatwoot", "OtherWebhook",
        "ToggleStatusResult", "WebhookEvent", "WebhookPayloadError",
        "WebhookSignatureMismatchError", "WebhookSignatureMissingError", "WebhookTimestampError",
        "WebhookVerificationError", "WebhookVerifier", "compute_signature", "contact_row",
        "contacts_table_ddl", "parse_webhook", "sync_contacts", "to_canonical_contact",
        "verify_signature",
    }  # fmt: skip
    assert set(connector_adapters.postgres.__all__) == {"PostgresStateStore", "state_table_ddl"}
    for module in (connector_adapters, connector_adapters.chatwoot, connector_adapters.postgres):
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
