"""Composite requests and sObject collections, against the mock and the managed client
(through the fake Salesforce, which holds every request and subrequest to the collection)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from adapters_salesforce_fake import FakeSalesforce, managed_config

from connector_adapters.salesforce import (
    COLLECTION_CHUNK,
    COMPOSITE_LIMIT,
    CompositeRequest,
    ManagedSalesforce,
    MockSalesforce,
    SalesforceClient,
    Soql,
)
from connector_core import ErrorCode, InvalidRequestError, WriteResult


@dataclass
class Env:
    client: SalesforceClient
    backend: MockSalesforce
    fake: FakeSalesforce | None

    def calls(self, contains: str) -> int:
        if self.fake is None:
            return sum(1 for op, _ in self.backend.calls if contains in op)
        return len(self.fake.rest_requests(contains))


@pytest.fixture(params=["mock", "managed"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    if request.param == "mock":
        mock = MockSalesforce()
        yield Env(mock, mock, None)
        return
    fake: FakeSalesforce = request.getfixturevalue("fake_salesforce")
    async with ManagedSalesforce(managed_config(fake)) as client:
        yield Env(client, fake.backend, fake)


# -- composite ----------------------------------------------------------------------------


async def test_composite_creates_an_account_and_a_contact_referring_to_it(env: Env) -> None:
    request = CompositeRequest()
    account = request.create("Account", {"Name": "Acme"}, ref="NewAccount")
    contact = request.create("Contact", {"LastName": "Doe", "AccountId": account.id})
    read = request.get("Account", account)
    found = request.query(
        str(Soql("Contact").select("Id", "AccountId").where("LastName", "=", "Doe"))
    )
    request.update("Contact", contact, {"FirstName": "Jane", "AccountId": account})

    result = await env.client.composite(request, all_or_none=True)

    assert result.ok
    assert [r.reference_id for r in result.composite_response] == [
        "NewAccount", "ref2", "ref3", "ref4", "ref5"
    ]  # fmt: skip
    assert [r.http_status for r in result.composite_response] == [201, 201, 200, 200, 204]
    account_id, contact_id = result[account].id, result[contact].id
    assert account_id
    assert contact_id
    stored = env.backend.records["Contact"][contact_id]
    assert stored["AccountId"] == account_id
    assert stored["FirstName"] == "Jane"
    record = result[read].record()
    assert record is not None
    assert record["Name"] == "Acme"
    assert [r["AccountId"] for r in result[found].records()] == [account_id]
    assert env.calls("composite") == 1


async def test_composite_all_or_none_rolls_everything_back(env: Env) -> None:
    request = CompositeRequest()
    account = request.create("Account", {"Name": "Kept?"})
    request.create("Contact", {"FirstName": "no last name", "AccountId": account.id})

    result = await env.client.composite(request, all_or_none=True)

    assert not result.ok
    assert env.backend.records["Account"] == {}
    assert env.backend.records["Contact"] == {}
    assert [e.error_code for e in result[account].errors] == ["PROCESSING_HALTED"]
    assert [e.error_code for e in result["ref2"].errors] == ["REQUIRED_FIELD_MISSING"]


async def test_composite_without_all_or_none_keeps_what_succeeded(env: Env) -> None:
    request = CompositeRequest()
    failing = request.create("Contact", {"FirstName": "no last name"})
    request.create("Account", {"Name": "Independent"})
    dependent = request.update("Contact", failing, {"LastName": "later"})

    result = await env.client.composite(request)

    assert [r.http_status for r in result.composite_response] == [400, 201, 400]
    assert [r["Name"] for r in env.backend.records["Account"].values()] == ["Independent"]
    assert [e.error_code for e in result[dependent].errors] == ["PROCESSING_HALTED"]


def test_the_builder_refuses_a_26th_subrequest_and_reused_reference_ids() -> None:
    request = CompositeRequest()
    for i in range(COMPOSITE_LIMIT):
        request.create("Account", {"Name": f"a{i}"})
    with pytest.raises(InvalidRequestError, match="at most 25"):
        request.create("Account", {"Name": "one too many"})
    again = CompositeRequest()
    again.create("Account", {"Name": "x"}, ref="A")
    with pytest.raises(InvalidRequestError, match="used twice"):
        again.create("Account", {"Name": "y"}, ref="A")
    with pytest.raises(InvalidRequestError):
        again.get("Account", "not an id; DROP")
    with pytest.raises(InvalidRequestError):
        again.create("Account; x", {"Name": "y"})


async def test_composite_refuses_more_than_25_subrequests_before_sending(env: Env) -> None:
    subrequests = []
    for _ in range(2):
        request = CompositeRequest()
        for i in range(13):
            request.create("Account", {"Name": f"a{i}"}, ref=f"r{len(subrequests) + i}")
        subrequests.extend(request)
    with pytest.raises(InvalidRequestError, match="at most 25"):
        await env.client.composite(subrequests)
    assert env.calls("composite") == 0


# -- sObject collections ------------------------------------------------------------------

N = 450  # three chunks: 200, 200, 50


def _rows(failing: set[int]) -> list[dict[str, object]]:
    # A record without its required Name is refused by Salesforce, alone.
    return [
        {"NumberOfEmployees": i}
        if i in failing
        else {"Name": f"Acme {i}", "External_Id__c": f"e{i}"}
        for i in range(N)
    ]


FAILING = {3, 199, 200, 201, 449}


async def test_create_records_in_chunks_of_200_with_some_failing(env: Env) -> None:
    result = await env.client.create_records("Account", _rows(FAILING))

    assert isinstance(result, WriteResult)
    assert (result.written, result.failed) == (N - len(FAILING), len(FAILING))
    assert [e.index for e in result.errors] == sorted(FAILING)
    assert {e.code for e in result.errors} == {ErrorCode.INVALID_REQUEST}
    assert all("REQUIRED_FIELD_MISSING" in e.message and "Name" in e.message for e in result.errors)
    assert env.calls("create_records" if env.fake is None else "/composite/sobjects") == 3
    stored = env.backend.records["Account"]
    assert len(stored) == N - len(FAILING)
    for index, record_id in enumerate(result.ids):
        assert (record_id is None) == (index in FAILING)
        if record_id is not None:
            assert stored[record_id]["Name"] == f"Acme {index}"


async def test_update_upsert_and_delete_records_report_input_indexes(env: Env) -> None:
    ids = env.backend.seed(
        "Account", [{"Name": f"A{i}", "External_Id__c": f"e{i}"} for i in range(250)]
    )
    missing = "001000000000000ZZZ"
    updates = [{"Id": i, "Name": f"B{n}"} for n, i in enumerate(ids)]
    updates.insert(210, {"Id": missing, "Name": "nobody"})
    updated = await env.client.update_records("Account", updates)
    assert (updated.written, updated.failed) == (250, 1)
    assert [(e.index, e.key, e.code) for e in updated.errors] == [
        (210, missing, ErrorCode.NOT_FOUND)
    ]
    assert env.backend.records["Account"][ids[249]]["Name"] == "B249"

    upserts = [{"External_Id__c": f"e{i}", "Name": f"C{i}"} for i in range(240, 260)]
    upserted = await env.client.upsert_records("Account", "External_Id__c", upserts)
    assert upserted.ok
    assert upserted.created == (False,) * 10 + (True,) * 10
    assert len(env.backend.records["Account"]) == 260

    doomed = [*ids[:205], missing]
    deleted = await env.client.delete_records("Account", doomed)
    assert (deleted.written, deleted.failed) == (205, 1)
    assert [(e.index, e.key) for e in deleted.errors] == [(205, missing)]
    assert len(env.backend.records["Account"]) == 55


async def test_all_or_none_rolls_back_the_failing_chunk_and_sends_no_more(env: Env) -> None:
    result = await env.client.create_records("Account", _rows({250}), all_or_none=True)

    assert (result.written, result.failed) == (COLLECTION_CHUNK, N - COLLECTION_CHUNK)
    assert len(env.backend.records["Account"]) == COLLECTION_CHUNK  # the first chunk stays
    by_index = {e.index: e for e in result.errors}
    assert "REQUIRED_FIELD_MISSING" in by_index[250].message
    assert "ALL_OR_NONE_OPERATION_ROLLED_BACK" in by_index[249].message
    assert "NOT_SENT" in by_index[449].message
    assert env.calls("create_records" if env.fake is None else "/composite/sobjects") == 2
