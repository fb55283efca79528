"""Bulk API 2.0 against the mock and the managed client (through the fake Salesforce,
whose ingest jobs answer InProgress to the first polls): ingest jobs with their typed
result rows, and query jobs paged by Sforce-Locator."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from adapters_salesforce_fake import FakeSalesforce, managed_config

from connector_adapters.salesforce import (
    BulkFailure,
    BulkSuccess,
    ManagedSalesforce,
    MockSalesforce,
    SalesforceClient,
)
from connector_core import (
    AuthenticationError,
    ConnectorTimeoutError,
    InvalidRequestError,
    NotFoundError,
)

FAST = {"initial_delay": 0.01, "max_delay": 0.02}


@dataclass
class Env:
    client: SalesforceClient
    backend: MockSalesforce
    fake: FakeSalesforce | None


@pytest.fixture(params=["mock", "managed"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    if request.param == "mock":
        mock = MockSalesforce()
        yield Env(mock, mock, None)
        return
    fake: FakeSalesforce = request.getfixturevalue("fake_salesforce")
    async with ManagedSalesforce(managed_config(fake)) as client:
        yield Env(client, fake.backend, fake)


N = 50_000
FAILING = set(range(7, N, 1000))  # 50 rows without their required Name


def _rows() -> list[dict[str, object]]:
    return [
        {"External_Id__c": f"e{i}", "NumberOfEmployees": i}
        if i in FAILING
        else {"Name": f"Acme {i}", "External_Id__c": f"e{i}", "NumberOfEmployees": i}
        for i in range(N)
    ]


async def test_ingest_of_50000_rows_with_some_failures_parses_every_result(env: Env) -> None:
    client = env.client
    job = await client.create_ingest_job("Account", "insert")
    assert job.state == "Open"
    await client.upload_job_data(job.id, _rows())
    closed = await client.close_job(job.id)
    assert closed.state in ("UploadComplete", "JobComplete")
    done = await client.wait_for_job(job.id, timeout=60, **FAST)

    assert done.state == "JobComplete"
    assert (done.number_records_processed, done.number_records_failed) == (N, len(FAILING))
    successes = [row async for row in client.successful_results(job.id)]
    failures = [row async for row in client.failed_results(job.id)]
    assert all(isinstance(r, BulkSuccess) for r in successes)
    assert all(isinstance(r, BulkFailure) for r in failures)
    assert len(successes) == N - len(FAILING)
    assert all(r.created for r in successes)
    stored = env.backend.records["Account"]
    assert len(stored) == N - len(FAILING)
    assert all(stored[r.id]["External_Id__c"] == r.fields["External_Id__c"] for r in successes)
    assert sorted(int(r.fields["External_Id__c"][1:]) for r in failures) == sorted(FAILING)
    assert {r.error_code for r in failures} == {"REQUIRED_FIELD_MISSING"}
    assert all("Name" in r.error and r.id == "" for r in failures)
    assert [r async for r in client.unprocessed_records(job.id)] == []
    if env.fake is not None:  # the poll waited through InProgress
        polls = [r for r in env.fake.rest_requests(f"/jobs/ingest/{job.id}") if r.method == "GET"]
        states = [r.response["state"] for r in polls if isinstance(r.response, dict)]
        assert states[:2] == ["InProgress", "InProgress"]
        assert states[-1] == "JobComplete"


async def test_bulk_ingest_upserts_and_keeps_awkward_values_intact(env: Env) -> None:
    env.backend.seed("Account", [{"Name": "old", "External_Id__c": "e1"}])
    awkward = 'Acme, "Quoted"\nsecond line'
    job = await env.client.bulk_ingest(
        "Account", "upsert",
        [{"External_Id__c": "e1", "Name": awkward}, {"External_Id__c": "e2", "Name": "new"}],
        external_id_field="External_Id__c", timeout=60,
    )  # fmt: skip
    assert (job.number_records_processed, job.number_records_failed) == (2, 0)
    rows = {r.fields["External_Id__c"]: r async for r in env.client.successful_results(job.id)}
    assert (rows["e1"].created, rows["e2"].created) == (False, True)
    assert rows["e1"].fields["Name"] == awkward
    assert env.backend.records["Account"][rows["e1"].id]["Name"] == awkward


async def test_an_aborted_job_lists_its_unprocessed_records(env: Env) -> None:
    job = await env.client.create_ingest_job("Account", "insert")
    await env.client.upload_job_data(job.id, "Name,External_Id__c\nA,x1\nB,x2\n")
    aborted = await env.client.abort_job(job.id)
    assert aborted.state == "Aborted"
    unprocessed = [r.fields async for r in env.client.unprocessed_records(job.id)]
    assert unprocessed == [{"Name": "A", "External_Id__c": "x1"},
                           {"Name": "B", "External_Id__c": "x2"}]  # fmt: skip
    assert env.backend.records["Account"] == {}


async def test_a_job_that_fails_as_a_whole_raises_and_keeps_its_rows(env: Env) -> None:
    with pytest.raises(InvalidRequestError, match="ended Failed: InvalidBatch") as info:
        await env.client.bulk_ingest("Account", "insert", "Nope\nx\ny\n", timeout=60)
    job_id = info.value.details["job_id"]
    assert [r.fields async for r in env.client.unprocessed_records(job_id)] == [
        {"Nope": "x"}, {"Nope": "y"}
    ]  # fmt: skip


def test_an_upsert_job_needs_its_external_id_field() -> None:
    mock = MockSalesforce()
    with pytest.raises(InvalidRequestError, match="external_id_field"):
        mock.bulk_create_now("ingest", {"object": "Account", "operation": "upsert"})


async def test_waiting_is_bounded_by_its_deadline(fake_salesforce: FakeSalesforce) -> None:
    fake_salesforce.bulk_polls_in_progress = 10**6
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        job = await client.create_ingest_job("Account", "insert")
        await client.upload_job_data(job.id, [{"Name": "x"}])
        await client.close_job(job.id)
        with pytest.raises(ConnectorTimeoutError, match="still InProgress") as info:
            await client.wait_for_job(job.id, timeout=0.2, **FAST)
    assert info.value.details["job_id"] == job.id
    polls = [r for r in fake_salesforce.rest_requests(job.id) if r.method == "GET"]
    assert 2 <= len(polls) < 100  # it waited between polls (doubling), and it stopped


async def test_a_query_job_is_read_page_by_page_through_the_locator(env: Env) -> None:
    ids = env.backend.seed("Account", [{"Name": f"Acme {i:04d}"} for i in range(2500)])
    env.backend.delete_now("Account", ids[0])
    rows = [
        row
        async for row in env.client.bulk_query(
            "SELECT Id, Name FROM Account ORDER BY Name", max_records=1000, timeout=60
        )
    ]
    assert [r["Id"] for r in rows] == ids[1:]
    assert rows[0] == {"Id": ids[1], "Name": "Acme 0001"}
    if env.fake is not None:
        pages = env.fake.rest_requests("/results")
        assert [dict(r.query).get("locator") for r in pages] == [
            None, pages[0].response["locator"], pages[1].response["locator"]
        ]  # fmt: skip
        assert [r.response["records"] for r in pages] == [1000, 1000, 499]
        assert pages[2].response["locator"] is None

    everything = [
        r["Id"]
        async for r in env.client.bulk_query(
            "SELECT Id FROM Account", include_deleted=True, max_records=2000, timeout=60
        )
    ]
    assert Counter(everything) == Counter(ids)


async def test_the_servers_page_size_is_followed_when_the_client_names_none(
    fake_salesforce: FakeSalesforce,
) -> None:
    fake_salesforce.bulk_page_size = 300
    ids = fake_salesforce.backend.seed("Account", [{"Name": f"A{i}"} for i in range(1000)])
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        job = await client.create_query_job("SELECT Id FROM Account")
        await client.wait_for_job(job.id, query=True, timeout=60, **FAST)
        found = [r["Id"] async for r in client.query_job_results(job.id)]
    assert sorted(found) == sorted(ids)
    assert len(fake_salesforce.rest_requests("/results")) == 4


async def test_a_session_expiring_before_a_results_stream_is_renewed_once(
    fake_salesforce: FakeSalesforce,
) -> None:
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        job = await client.bulk_ingest("Account", "insert", [{"Name": f"A{i}"} for i in range(5)])
        fake_salesforce.expire_after = 0
        rows = [r async for r in client.successful_results(job.id)]
        assert len(rows) == 5
        assert client.stats().session_renewals == 1


async def test_result_rows_come_as_the_body_streams_in(fake_salesforce: FakeSalesforce) -> None:
    fake_salesforce.backend.seed("Account", [{"Name": f"A{i}"} for i in range(100)])
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        job = await client.bulk_ingest("Account", "delete", [
            {"Id": r} for r in fake_salesforce.backend.records["Account"]])  # fmt: skip
        for read in (
            lambda: client.successful_results(job.id),
            lambda: client.bulk_query("SELECT Id FROM Account", include_deleted=True),
        ):
            fake_salesforce.hold_results = threading.Event()
            rows = read()
            first = await anext(rows)  # the fake sends no more until the event is set
            fake_salesforce.hold_results.set()
            rest = [row async for row in rows]
            assert first is not None
            assert len(rest) == 99
    assert fake_salesforce.results_held == [True, True]  # released by the test, not a timeout


async def test_a_results_stream_refused_not_for_rest_is_final_and_mints_no_token(
    fake_salesforce: FakeSalesforce,
) -> None:
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        job = await client.bulk_ingest("Account", "insert", [{"Name": "A"}])
        minted = client.stats().token_requests
        fake_salesforce.not_for_rest = True
        with pytest.raises(AuthenticationError, match="not allowed to use the REST API") as info:
            _ = [r async for r in client.successful_results(job.id)]
        assert info.value.details["errorCode"] == "INVALID_SESSION_ID"
        assert client.stats().token_requests == minted


async def test_an_unknown_job_is_not_found_with_salesforces_error_code(env: Env) -> None:
    with pytest.raises(NotFoundError) as info:
        _ = [r async for r in env.client.failed_results("750000000000000AAA")]
    assert info.value.details["errorCode"] == "NOT_FOUND"
