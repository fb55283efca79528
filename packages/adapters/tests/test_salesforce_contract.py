"""An adapter's client runs the connector lifecycle suite: ManagedSalesforce is a
Connector composed from two HttpConnectors (login and instance), against the fake."""

from __future__ import annotations

from typing import Any

import pytest
from adapters_salesforce_fake import FakeSalesforce, managed_config

from connector_adapters.salesforce import ManagedSalesforce, MockSalesforce, SalesforceConfig
from connector_core import Connector, NotConnectedError
from connector_testing import ConnectorContractTests, closed_port

pytestmark = pytest.mark.integration


class TestManagedSalesforceContract(ConnectorContractTests):
    connector_class = ManagedSalesforce

    @pytest.fixture
    def config(self, fake_salesforce: FakeSalesforce) -> SalesforceConfig:
        return managed_config(fake_salesforce, "client_credentials")

    @pytest.fixture
    def unreachable_config(self, fake_salesforce: FakeSalesforce) -> SalesforceConfig:
        return managed_config(
            fake_salesforce, "client_credentials",
            login_url=f"http://127.0.0.1:{closed_port()}", connect_timeout=2.0,
            retry={"max_attempts": 2, "initial_delay": 0.01},
        )  # fmt: skip

    @pytest.fixture
    def invalid_config_fields(self) -> dict[str, Any]:
        return {"login_url": "ftp://x", "api_version": "62", "api_usage_warn_threshold": 5}

    @pytest.fixture
    def road_of(self) -> Any:
        return lambda connector: connector.login_http

    @pytest.fixture
    def provoke_secret_echo(self, fake_salesforce: FakeSalesforce) -> Any:
        async def echo(connector: ManagedSalesforce) -> None:
            # The session expires; the new login meets a careless proxy quoting the form.
            fake_salesforce.expire_after = 0
            body = {"error": "invalid_client", "error_description": "refused {form}"}
            fake_salesforce.fail_next(400, body, path_contains="/services/oauth2/token")
            await connector.limits()

        return echo


async def test_the_mock_is_a_connector_too(fake_salesforce: FakeSalesforce) -> None:
    mock = MockSalesforce()
    assert isinstance(mock, Connector)
    with pytest.raises(NotConnectedError):
        await ManagedSalesforce(managed_config(fake_salesforce)).ping()
    async with mock:
        assert mock.is_connected
        assert (await mock.check()).connector == "salesforce-mock"
    assert not mock.is_connected
