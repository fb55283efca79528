"""One behaviour suite for every Salesforce client: MockSalesforce and ManagedSalesforce.

The managed client talks to the fake Salesforce, which holds every request to
Salesforce's Postman collection; its backend is a MockSalesforce, which the tests seed
directly (``env.backend``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from adapters_salesforce_fake import FakeSalesforce, managed_config

from connector_adapters.salesforce import (
    Like,
    ManagedSalesforce,
    MockSalesforce,
    SalesforceClient,
    SalesforceConfig,
    Soql,
    format_soql,
)
from connector_core import (
    ConflictError,
    FieldType,
    InvalidRequestError,
    NotFoundError,
    QueryError,
)


@dataclass
class Env:
    client: SalesforceClient
    backend: MockSalesforce
    fake: FakeSalesforce | None

    def correlation_ids(self) -> list[str]:
        """The correlation id of every call the client made, in order."""
        if self.fake is None:
            return [cid for _, cid in self.backend.calls]
        return [r.headers.get("x-correlation-id", "") for r in self.fake.rest_requests()]


@pytest.fixture(params=["mock", "managed"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    if request.param == "mock":
        mock = MockSalesforce()
        yield Env(mock, mock, None)
        return
    fake: FakeSalesforce = request.getfixturevalue("fake_salesforce")
    async with ManagedSalesforce(managed_config(fake)) as client:
        yield Env(client, fake.backend, fake)


def _accounts(env: Env, n: int) -> list[str]:
    return env.backend.seed(
        "Account",
        [
            {"Name": f"Acme {i:04d}", "NumberOfEmployees": i, "External_Id__c": f"ext-{i}"}
            for i in range(n)
        ],
    )


def test_both_implementations_satisfy_the_protocol() -> None:
    assert isinstance(MockSalesforce(), SalesforceClient)
    config = SalesforceConfig(
        login_url="https://acme.my.salesforce.com",
        auth={"type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    assert isinstance(ManagedSalesforce(config), SalesforceClient)


# -- queries ------------------------------------------------------------------------------


async def test_query_yields_every_record_with_the_selected_fields(env: Env) -> None:
    ids = _accounts(env, 30)
    records = [r async for r in env.client.query("SELECT Id, Name FROM Account")]
    assert [r.id for r in records] == ids
    assert records[3].fields() == {"Id": ids[3], "Name": "Acme 0003"}
    assert records[3].attributes is not None
    assert records[3].attributes.type == "Account"


async def test_a_built_query_filters_orders_and_limits(env: Env) -> None:
    _accounts(env, 20)
    query = (
        Soql("Account")
        .select("Name", "NumberOfEmployees")
        .where("NumberOfEmployees", ">=", 5)
        .where("Name", "LIKE", Like.starts_with("acme 00"))
        .order_by("NumberOfEmployees", descending=True)
        .limit(3)
    )
    names = [r["Name"] async for r in env.client.query(str(query))]
    assert names == ["Acme 0019", "Acme 0018", "Acme 0017"]


async def test_count_is_the_total_size(env: Env) -> None:
    _accounts(env, 12)
    assert await env.client.count("SELECT COUNT() FROM Account") == 12
    soql = format_soql("SELECT COUNT() FROM Account WHERE NumberOfEmployees < :n", n=4)
    assert await env.client.count(soql) == 4


async def test_query_all_includes_deleted_records(env: Env) -> None:
    ids = _accounts(env, 3)
    assert await env.client.delete("Account", ids[1])
    live = [r.id async for r in env.client.query("SELECT Id FROM Account")]
    everything = {
        r.id: r["IsDeleted"]
        async for r in env.client.query_all("SELECT Id, IsDeleted FROM Account")
    }
    assert live == [ids[0], ids[2]]
    assert everything == {ids[0]: False, ids[1]: True, ids[2]: False}


async def test_a_bound_value_cannot_change_the_query(env: Env) -> None:
    hostile = "x' OR Name != 'y"
    env.backend.seed("Account", [{"Name": hostile}, {"Name": "other"}, {"Name": "x\\"}])
    for value in (hostile, "x\\", "other"):
        soql = format_soql("SELECT Name FROM Account WHERE Name = :name", name=value)
        assert [r["Name"] async for r in env.client.query(soql)] == [value]


async def test_an_unknown_field_is_a_query_error_naming_it(env: Env) -> None:
    with pytest.raises(QueryError, match="Nope") as caught:
        [r async for r in env.client.query("SELECT Id, Nope FROM Account")]
    assert caught.value.details["errorCode"] == "INVALID_FIELD"


async def test_soql_outside_what_both_answer_is_malformed(env: Env) -> None:
    with pytest.raises(QueryError) as caught:
        await env.client.count("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'")
    assert caught.value.details["errorCode"] == "MALFORMED_QUERY"


# -- sObjects -----------------------------------------------------------------------------


async def test_create_get_update_delete(env: Env) -> None:
    created = await env.client.create("Account", {"Name": "Initech", "NumberOfEmployees": 40})
    assert created.success
    assert created.id
    got = await env.client.get("Account", created.id)
    assert got is not None
    assert got["Name"] == "Initech"
    assert got["NumberOfEmployees"] == 40
    assert await env.client.update("Account", created.id, {"Industry": "Software"})
    again = await env.client.get("Account", created.id, fields=["Name", "Industry"])
    assert again is not None
    assert again.fields() == {"Name": "Initech", "Industry": "Software"}
    assert await env.client.delete("Account", created.id)
    assert await env.client.get("Account", created.id) is None


async def test_missing_records_are_none_or_false_never_errors(env: Env) -> None:
    missing = "001000000000000AAA"
    assert await env.client.get("Account", missing) is None
    assert await env.client.update("Account", missing, {"Name": "x"}) is False
    assert await env.client.delete("Account", missing) is False
    assert await env.client.get("Nope__c", missing) is None  # Salesforce's 404 is the same


async def test_a_missing_required_field_names_it(env: Env) -> None:
    with pytest.raises(InvalidRequestError, match="REQUIRED_FIELD_MISSING") as caught:
        await env.client.create("Contact", {"FirstName": "Ada"})
    assert caught.value.details["fields"] == ["LastName"]
    assert caught.value.details["errorCode"] == "REQUIRED_FIELD_MISSING"


async def test_bad_ids_and_names_are_refused_before_any_request(env: Env) -> None:
    before = len(env.correlation_ids())
    with pytest.raises(InvalidRequestError):
        await env.client.get("Account", "../../limits")
    with pytest.raises(InvalidRequestError):
        await env.client.create("Account/x", {"Name": "a"})
    with pytest.raises(InvalidRequestError):
        await env.client.update("Account", "001000000000000AAA", {"Name; x": 1})
    if env.fake is not None:
        assert len(env.correlation_ids()) == before


async def test_upsert_creates_then_updates_by_external_id(env: Env) -> None:
    first = await env.client.upsert("Account", "External_Id__c", "ERP/42", {"Name": "Globex"})
    assert first.created
    assert first.id
    second = await env.client.upsert("Account", "External_Id__c", "ERP/42", {"Name": "Globex 2"})
    assert not second.created
    got = await env.client.get("Account", first.id)
    assert got is not None
    assert got["Name"] == "Globex 2"
    assert got["External_Id__c"] == "ERP/42"


async def test_upsert_matching_several_records_lists_them(env: Env) -> None:
    ids = env.backend.seed(
        "Account", [{"Name": "a", "External_Id__c": "dup"}, {"Name": "b", "External_Id__c": "dup"}]
    )
    with pytest.raises(ConflictError, match="2 Account records") as caught:
        await env.client.upsert("Account", "External_Id__c", "dup", {"Name": "c"})
    matches = caught.value.details["matches"]
    assert [m.rsplit("/", 1)[1] for m in matches] == ids


async def test_get_updated_and_get_deleted_cover_a_window(env: Env) -> None:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    ids = _accounts(env, 3)
    assert await env.client.delete("Account", ids[0])
    end = start + timedelta(minutes=3)
    updated = await env.client.get_updated("Account", start, end)
    deleted = await env.client.get_deleted("Account", start, end)
    assert set(updated.ids) == {ids[1], ids[2]}
    assert [d.id for d in deleted.deleted_records] == [ids[0]]
    later = await env.client.get_updated(
        "Account", end + timedelta(minutes=5), end + timedelta(minutes=9)
    )
    assert later.ids == []
    with pytest.raises(InvalidRequestError, match="aware"):
        await env.client.get_updated("Account", start.replace(tzinfo=None), end)


# -- metadata -----------------------------------------------------------------------------


async def test_describe_and_discover_give_portable_streams(env: Env) -> None:
    names = {s.name for s in (await env.client.describe_global()).sobjects}
    assert {"Account", "Contact"} <= names
    describe = await env.client.describe("Account")
    assert "External_Id__c" in describe.field_names()
    catalog = await env.client.discover(["Account", "Contact"])
    account = catalog.stream("Account")
    assert account.primary_key == ("Id",)
    assert account.cursor_field == "SystemModstamp"
    types = {f.name: f.type for f in account.fields}
    assert types["AnnualRevenue"] is FieldType.DECIMAL
    assert types["CreatedDate"] is FieldType.DATETIME
    assert types["NumberOfEmployees"] is FieldType.INTEGER
    assert catalog.stream("Contact").field("Birthdate").type is FieldType.DATE


async def test_a_query_checked_against_describe_names_unknown_fields(env: Env) -> None:
    describe = await env.client.describe("Account")
    Soql("Account").select("Id", "Name").check(describe)
    with pytest.raises(InvalidRequestError, match=r"Nmae.*known: .*Name"):
        Soql("Account").select("Id", "Nmae").check(describe)


async def test_describe_of_an_unknown_object_is_not_found(env: Env) -> None:
    with pytest.raises(NotFoundError):
        await env.client.describe("Nope__c")


async def test_limits_and_api_usage(env: Env) -> None:
    limits = await env.client.limits()
    assert limits["DailyApiRequests"].max > limits["DailyApiRequests"].remaining >= 0
    usage = env.client.api_usage
    assert usage is not None
    assert 0 < usage.used < usage.limit


async def test_the_correlation_id_goes_with_every_call(env: Env) -> None:
    _accounts(env, 2)
    [r async for r in env.client.query("SELECT Id FROM Account", correlation_id="corr-1")]
    await env.client.count("SELECT COUNT() FROM Account", correlation_id="corr-2")
    await env.client.create("Account", {"Name": "x"}, correlation_id="corr-3")
    await env.client.describe("Account", correlation_id="corr-4")
    assert env.correlation_ids()[-4:] == ["corr-1", "corr-2", "corr-3", "corr-4"]
    await env.client.limits()
    generated = env.correlation_ids()[-1]
    assert generated
    assert generated not in {"corr-1", "corr-2", "corr-3", "corr-4"}
