from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from adapters_chatwoot_fake import (
    REPO_ROOT,
    ChatwootContract,
    FakeChatwoot,
    FakeChatwootServer,
    contract_path,
)
from adapters_salesforce_fake import (
    FakeSalesforce,
    FakeSalesforceServer,
    SalesforceContract,
    contract_dir,
    make_key_pair,
)

from connector_postgres import PostgresConnector
from connector_testing import unique_name


@pytest.fixture(scope="session")
def chatwoot_contract() -> ChatwootContract:
    """Chatwoot's OpenAPI document, vendored in contracts/ (a missing file fails loudly)."""
    path = contract_path(REPO_ROOT)
    if not path.is_file():
        pytest.fail(
            f"Chatwoot's OpenAPI document is missing: expected {path} "
            "(vendored in the repository: see contracts/README.md)",
            pytrace=False,
        )
    return ChatwootContract(path)


@pytest.fixture(scope="session")
def chatwoot_server(chatwoot_contract: ChatwootContract) -> Iterator[FakeChatwootServer]:
    server = FakeChatwootServer(FakeChatwoot(chatwoot_contract))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_chatwoot(chatwoot_server: FakeChatwootServer) -> Iterator[FakeChatwoot]:
    """A fresh fake Chatwoot; the test fails if any request or response broke the contract."""
    fake = chatwoot_server.fake
    fake.reset()
    yield fake
    violations = list(fake.violations)
    fake.reset()
    assert not violations, "contract violations:\n" + "\n".join(violations)


@pytest.fixture
async def pg(postgres_database_url: str) -> AsyncIterator[PostgresConnector]:
    """A PostgresConnector connected to the real PostgreSQL of the test services."""
    async with PostgresConnector.from_url(postgres_database_url) as connector:
        yield connector


@pytest.fixture
def table() -> str:
    """A contacts table name no other test uses; ``sync_contacts`` creates the table
    (from ``CONTACTS_STREAM``) on its first run."""
    return unique_name("contacts")


# -- Salesforce ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def salesforce_contract() -> SalesforceContract:
    """Salesforce's Postman collection, vendored in contracts/ (missing: a failure)."""
    path = contract_dir(REPO_ROOT)
    if not path.is_dir():
        pytest.fail(
            f"Salesforce's Postman collection is missing: expected {path} "
            "(vendored in the repository: see contracts/README.md)",
            pytrace=False,
        )
    return SalesforceContract(path)


@pytest.fixture(scope="session")
def salesforce_server(salesforce_contract: SalesforceContract) -> Iterator[FakeSalesforceServer]:
    private, public = make_key_pair()  # the test key pair: generated here, never stored
    server = FakeSalesforceServer(FakeSalesforce(salesforce_contract, public, private))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_salesforce(salesforce_server: FakeSalesforceServer) -> Iterator[FakeSalesforce]:
    """A fresh fake Salesforce; the test fails if any request broke the collection."""
    fake = salesforce_server.fake
    fake.reset()
    yield fake
    violations = list(fake.violations)
    fake.reset()
    assert not violations, "contract violations:\n" + "\n".join(violations)
