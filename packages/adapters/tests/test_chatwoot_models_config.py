"""Chatwoot payload models (nulls, unknown fields, both shapes) and ChatwootConfig."""

from __future__ import annotations

import pytest

from connector_adapters.chatwoot import ChatwootConfig, ChatwootContact, ChatwootMessage
from connector_adapters.chatwoot._models import (
    parse_contact,
    parse_contact_page,
    parse_conversation_page,
)
from connector_core import ConfigError, SerializationError

TOKEN = "cw-token-value-77"


def test_contact_tolerates_nulls_and_keeps_unknown_fields() -> None:
    contact = ChatwootContact.model_validate(
        {
            "id": 1,
            "name": None,
            "email": None,
            "phone_number": None,
            "blocked": None,
            "custom_attributes": None,
            "additional_attributes": None,
            "contact_inboxes": None,
            "last_activity_at": None,
            "created_at": 1_700_000_000,
            "brand_new_field": {"a": 1},
        }
    )
    assert (contact.name, contact.email, contact.blocked) == (None, None, False)
    assert contact.custom_attributes == {}
    assert contact.contact_inboxes == []
    assert contact.created_at is not None
    assert contact.created_at.year == 2023
    assert (contact.model_extra or {})["brand_new_field"] == {"a": 1}
    assert contact.model_dump(mode="json")["created_at"] == 1_700_000_000


@pytest.mark.parametrize(
    "body",
    [
        {"payload": {"contact": {"id": 5, "name": "S"}, "contact_inbox": {"source_id": "x"}}},
        {"payload": [{"name": "S"}], "id": 5},
        {"payload": {"id": 5, "name": "S"}},
        {"id": 5, "name": "S"},
    ],
    ids=["server-create", "document-create", "show-or-server-update", "bare"],
)
def test_every_contact_shape_is_understood(body: dict[str, object]) -> None:
    contact = parse_contact(body)
    assert contact is not None
    assert (contact.id, contact.name) == (5, "S")


def test_contact_page_accepts_string_or_int_page_and_rejects_other_shapes() -> None:
    page = parse_contact_page(
        {"meta": {"count": 2, "current_page": "1"}, "payload": [{"id": 1}, {"id": 2}]}, page=1
    )
    assert (page.count, [c.id for c in page.contacts]) == (2, [1, 2])
    assert parse_contact_page({"meta": {"current_page": 3}, "payload": []}, page=3).count is None
    with pytest.raises(SerializationError, match="contact list"):
        parse_contact_page({"payload": {"id": 1}}, page=1)


def test_conversation_page_with_or_without_data() -> None:
    body = {"meta": {"all_count": 1, "mine_count": 0}, "payload": [{"id": 4, "status": "open"}]}
    for wrapped in ({"data": body}, body):
        page = parse_conversation_page(wrapped, page=1)
        assert [c.id for c in page.conversations] == [4]
        assert page.counts == {"all_count": 1, "mine_count": 0}


def test_message_type_codes_become_names() -> None:
    codes = [ChatwootMessage(id=i, message_type=i).message_type for i in range(4)]  # type: ignore[arg-type]
    assert codes == ["incoming", "outgoing", "activity", "template"]


def test_config_defaults_are_chatwoots_limits() -> None:
    config = ChatwootConfig()
    assert (config.requests_per_minute, config.search_requests_per_minute) == (3000, 100)
    assert config.base_url == "https://app.chatwoot.com"
    assert not config.is_managed


def test_config_modes() -> None:
    assert ChatwootConfig(account_id=1, api_access_token=TOKEN).is_managed
    assert not ChatwootConfig(account_id=1).is_managed
    assert not ChatwootConfig(account_id=1, api_access_token=TOKEN, mode="mock").is_managed
    with pytest.raises(ConfigError) as info:
        ChatwootConfig(mode="managed")
    assert "account_id and api_access_token" in str(info.value)


def test_config_errors_name_every_bad_field_without_values() -> None:
    with pytest.raises(ConfigError) as info:
        ChatwootConfig.model_validate(
            {"base_url": "ftp://x", "account_id": 0, "requests_per_minute": 0, "nope": TOKEN}
        )
    assert set(info.value.fields) == {"base_url", "account_id", "requests_per_minute", "nope"}
    assert TOKEN not in str(info.value)


def test_config_from_env_and_url() -> None:
    env = {
        "CHATWOOT_BASE_URL": "https://chat.example.com/",
        "CHATWOOT_ACCOUNT_ID": "3",
        "CHATWOOT_API_ACCESS_TOKEN": TOKEN,
        "CHATWOOT_SEARCH_REQUESTS_PER_MINUTE": "50",
    }
    config = ChatwootConfig.from_env("CHATWOOT_", env)
    assert (config.base_url, config.account_id, config.search_requests_per_minute) == (
        "https://chat.example.com", 3, 50,
    )  # fmt: skip
    assert config.is_managed
    from_url = ChatwootConfig.from_url(
        f"https://chat.example.com/app/accounts/3/dashboard?api_access_token={TOKEN}"
    )
    assert (from_url.base_url, from_url.account_id) == ("https://chat.example.com", 3)
    assert from_url.api_access_token is not None
    for text in (repr(config), str(config), str(config.model_dump()), config.connection_string()):
        assert TOKEN not in text
    assert config.connection_string() == "https://chat.example.com/api/v1/accounts/3"


def test_partial_credentials_in_auto_mode_are_refused_not_mocked() -> None:
    with pytest.raises(ConfigError) as info:
        ChatwootConfig(api_access_token=TOKEN)
    assert info.value.fields == ("account_id",)
    assert "account_id" in str(info.value)
    assert TOKEN not in str(info.value)
    with pytest.raises(ConfigError) as info:
        ChatwootConfig(base_url="https://chat.example.com", account_id=3)
    assert info.value.fields == ("api_access_token",)
    with pytest.raises(ConfigError) as info:
        ChatwootConfig(base_url="https://chat.example.com")
    assert set(info.value.fields) == {"account_id", "api_access_token"}
    with pytest.raises(ConfigError) as info:
        ChatwootConfig.from_env("CHATWOOT_", {"CHATWOOT_API_ACCESS_TOKEN": TOKEN})
    assert info.value.fields == ("account_id",)
    # No credential at all (account_id alone numbers the mock's account) stays mock, and an
    # explicit mode still wins.
    assert not ChatwootConfig(account_id=2).is_managed
    assert not ChatwootConfig(api_access_token=TOKEN, mode="mock").is_managed


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"api_access_token": f"{TOKEN}\x00"}, "api_access_token"),  # h11 quoted it in errors
        ({"api_access_token": "tök-" + TOKEN}, "api_access_token"),  # httpx: UnicodeEncodeError
        ({"api_access_token": f"{TOKEN} x"}, "api_access_token"),
        ({"api_access_token": ""}, "api_access_token"),
        ({"correlation_id_header": "X Request"}, "correlation_id_header"),
        ({"correlation_id_header": "X-Corrélation"}, "correlation_id_header"),
        ({"requests_per_minute": 10**400}, "requests_per_minute"),  # OverflowError in the client
        ({"search_requests_per_minute": 10**8}, "search_requests_per_minute"),
        ({"burst": 10**30}, "burst"),
        ({"search_burst": 10**6}, "search_burst"),
        ({"account_id": 2**63}, "account_id"),  # the contacts table's bigint
        ({"webhook_tolerance": 1e300}, "webhook_tolerance"),
        ({"webhook_secret": f"{TOKEN}\ud800"}, "webhook_secret"),  # UTF-8 cannot sign with it
        ({"webhook_secret": ""}, "webhook_secret"),
        ({"base_url": "https://chat.example.com/" + "a" * 2048}, "base_url"),
    ],
)
def test_values_the_managed_client_cannot_use_are_config_errors(
    fields: dict[str, object], bad: str
) -> None:
    given = {"account_id": 1, "api_access_token": TOKEN, **fields}
    with pytest.raises(ConfigError) as info:
        ChatwootConfig.model_validate(given)
    assert info.value.fields == (bad,)
    assert TOKEN not in str(info.value)
    assert info.value.__context__ is None
