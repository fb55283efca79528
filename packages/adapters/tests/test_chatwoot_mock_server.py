"""MockChatwootServer: the managed client, through the real HTTP connector, against a mock
Chatwoot on a real socket (the routes' answers are held to Chatwoot's OpenAPI document by
the contract fake, which answers through the same code)."""

from __future__ import annotations

import pytest

from connector_adapters.chatwoot import ManagedChatwoot, MockChatwoot, MockChatwootServer
from connector_core import AuthenticationError, RetrySettings


async def test_the_managed_client_reads_and_changes_the_mock_over_http() -> None:
    backend = MockChatwoot(account_id=3)
    ids = backend.seed_contacts(20)
    conv = await backend.create_conversation(
        source_id="s-1", inbox_id=1, contact_id=ids[0], message="hello"
    )
    async with MockChatwootServer(backend) as server:
        assert server.url.startswith("http://127.0.0.1:")
        async with ManagedChatwoot(server.config()) as chatwoot:
            listed = [c.id async for c in chatwoot.iter_contacts(sort="name")]
            assert sorted(listed) == ids
            await chatwoot.update_contact(ids[1], name="Renamed", custom_attributes={"x": 1})
            found = await chatwoot.get_contact(ids[1])
            assert found is not None
            assert (found.name, found.custom_attributes) == ("Renamed", {"x": 1})
            assert await chatwoot.get_contact(999) is None
            messages = await chatwoot.list_messages(conv.id)
            assert [m.content for m in messages] == ["hello"]
            page = await chatwoot.list_conversations()
            assert [c.id for c in page.conversations] == [conv.id]
        assert server.requests >= 6
    assert backend.contacts[ids[1]].name == "Renamed"  # the change reached the backend


async def test_a_wrong_token_is_refused_like_chatwoot_does() -> None:
    async with MockChatwootServer(MockChatwoot()) as server:
        config = server.config(api_access_token="wrong", retry=RetrySettings(max_attempts=1))
        with pytest.raises(AuthenticationError, match="api_access_token"):
            async with ManagedChatwoot(config) as chatwoot:
                await chatwoot.list_contacts()


def test_the_url_is_known_only_once_started() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = MockChatwootServer().url
