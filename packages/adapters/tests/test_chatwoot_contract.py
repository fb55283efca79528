"""An adapter's client runs the connector lifecycle suite: ManagedChatwoot is a Connector
composed from an HttpConnector, against the fake Chatwoot server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from adapters_chatwoot_fake import TOKEN, FakeChatwoot, managed_config

from connector_adapters.chatwoot import ChatwootConfig, ManagedChatwoot, MockChatwoot
from connector_core import Connector, NotConnectedError
from connector_testing import ConnectorContractTests, closed_port

pytestmark = pytest.mark.integration


class TestManagedChatwootContract(ConnectorContractTests):
    connector_class = ManagedChatwoot

    @pytest.fixture
    def config(self, fake_chatwoot: FakeChatwoot) -> ChatwootConfig:
        return managed_config(fake_chatwoot.url)

    @pytest.fixture
    def unreachable_config(self) -> ChatwootConfig:
        return managed_config(
            f"http://127.0.0.1:{closed_port()}", connect_timeout=2.0, retry={"max_attempts": 2}
        )

    @pytest.fixture
    def invalid_config_fields(self) -> dict[str, Any]:
        return {"base_url": "ftp://chatwoot", "account_id": -1, "requests_per_minute": 0}

    @pytest.fixture
    def road_of(self) -> Any:
        return lambda connector: connector.http

    @pytest.fixture
    def provoke_secret_echo(self, fake_chatwoot: FakeChatwoot) -> Any:
        async def echo(connector: ManagedChatwoot) -> None:
            # A careless proxy in front of Chatwoot refuses and quotes the token it got.
            body = {"error": f"refused api_access_token={TOKEN}"}
            fake_chatwoot.respond_next(
                json.dumps(body).encode(), status=401, path_contains="/contacts"
            )
            await connector.list_contacts()

        return echo


async def test_the_mock_is_a_connector_too() -> None:
    mock = MockChatwoot()
    assert isinstance(mock, Connector)
    with pytest.raises(NotConnectedError):
        await ManagedChatwoot(managed_config("http://127.0.0.1:1")).ping()
    async with mock:
        assert mock.is_connected
        assert await mock.ping() > 0
    assert not mock.is_connected
