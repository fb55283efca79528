"""ManagedSalesforce against the fake Salesforce: logins, paging, session expiry, the
errors that must not loop, usage headers, retries and secrets."""

from __future__ import annotations

import logging

import pytest
from adapters_salesforce_fake import (
    CLIENT_SECRET,
    REFRESH_TOKEN,
    FakeSalesforce,
    make_key_pair,
    managed_config,
)

from connector_adapters.salesforce import ManagedSalesforce, SalesforceRecord
from connector_core import (
    AuthenticationError,
    ConfigError,
    ConnectorError,
    InvalidRequestError,
    NotConnectedError,
    RateLimitedError,
    ServiceUnavailableError,
)
from connector_testing import exception_texts, secret_leaks

SELECT = "SELECT Id, Name FROM Account"


def _seed(fake: FakeSalesforce, n: int) -> list[str]:
    return fake.backend.seed("Account", [{"Name": f"Acme {i:05d}"} for i in range(n)])


async def _ids(records: object) -> list[str]:
    out = []
    async for record in records:  # type: ignore[attr-defined]
        assert isinstance(record, SalesforceRecord)
        out.append(record.id)
    return out


# -- login --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "grant"),
    [
        ("jwt_bearer", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("client_credentials", "client_credentials"),
        ("refresh_token", "refresh_token"),
    ],
)
async def test_each_login_mints_one_token_and_uses_the_instance_url(
    fake_salesforce: FakeSalesforce, auth: str, grant: str
) -> None:
    _seed(fake_salesforce, 3)
    async with ManagedSalesforce(managed_config(fake_salesforce, auth)) as client:
        assert len(await _ids(client.query(SELECT))) == 3
        assert client.stats().token_requests == 1
    assert fake_salesforce.token_grants == [grant]
    logins = [r for r in fake_salesforce.requests if r.host == "login"]
    assert [r.path for r in logins] == ["/services/oauth2/token"]
    assert fake_salesforce.rest_requests()  # the REST calls went to the instance host


async def test_a_jwt_signed_with_another_key_is_refused_with_what_to_check(
    fake_salesforce: FakeSalesforce,
) -> None:
    other, _ = make_key_pair()
    config = managed_config(
        fake_salesforce, auth={"type": "jwt_bearer", "client_id": "3MVG9fakeConsumerKey",
                               "username": "integration@example.com", "private_key": other},
    )  # fmt: skip
    with pytest.raises(AuthenticationError, match=r"invalid_grant.*pre-authorized") as caught:
        await ManagedSalesforce(config).connect()
    assert fake_salesforce.token_grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    body = other.split("-----")[2].strip().splitlines()[3]
    assert not secret_leaks(exception_texts(caught.value), [body])


async def test_a_wrong_client_secret_is_refused_and_never_shown(
    fake_salesforce: FakeSalesforce,
) -> None:
    wrong = "wrong-secret-77aa"
    config = managed_config(
        fake_salesforce,
        auth={"type": "client_credentials", "client_id": "3MVG9fakeConsumerKey",
              "client_secret": wrong},
    )  # fmt: skip
    with pytest.raises(AuthenticationError, match="invalid_client") as caught:
        await ManagedSalesforce(config).connect()
    assert not secret_leaks(exception_texts(caught.value), [wrong, CLIENT_SECRET])
    assert not secret_leaks([repr(config), str(config)], [wrong])


async def test_a_key_that_cannot_sign_is_a_config_error(fake_salesforce: FakeSalesforce) -> None:
    bogus = "-----BEGIN PRIVATE KEY-----\nTm90QUtleQ==\n-----END PRIVATE KEY-----\n"
    config = managed_config(
        fake_salesforce, auth={"type": "jwt_bearer", "client_id": "x", "username": "u",
                               "private_key": bogus},
    )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        await ManagedSalesforce(config).connect()
    assert caught.value.fields == ("auth.private_key",)
    assert fake_salesforce.token_grants == []


async def test_calls_before_connect_say_so(fake_salesforce: FakeSalesforce) -> None:
    client = ManagedSalesforce(managed_config(fake_salesforce))
    with pytest.raises(NotConnectedError, match="connect"):
        await client.limits()
    result = await client.check()
    assert result.ok, result.error
    await client.disconnect()


# -- paging and session expiry --------------------------------------------------------------


async def test_five_thousand_records_come_in_batches_of_two_thousand(
    fake_salesforce: FakeSalesforce,
) -> None:
    ids = _seed(fake_salesforce, 5000)
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        seen = await _ids(client.query(SELECT))
        assert await client.count("SELECT COUNT() FROM Account") == 5000
    assert seen == ids
    batches = [r for r in fake_salesforce.rest_requests("/query") if r.status == 200]
    sizes = [len(r.response["records"]) for r in batches]
    assert sizes == [2000, 2000, 1000, 0]  # the last request is the count
    assert [r.path.rsplit("-", 1)[-1] for r in batches[1:3]] == ["2000", "4000"]


async def test_a_session_expiring_mid_query_mints_once_and_loses_nothing(
    fake_salesforce: FakeSalesforce,
) -> None:
    ids = _seed(fake_salesforce, 5000)
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        records = client.query(SELECT)
        first = [await anext(records) for _ in range(2000)]  # the first batch, read
        fake_salesforce.expire_after = 0  # the token dies before the second batch
        rest = await _ids(records)
        stats = client.stats()
    assert [r.id for r in first] + rest == ids  # nothing lost, nothing repeated
    assert stats.session_renewals == 1
    assert fake_salesforce.token_grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"] * 2
    second = [r for r in fake_salesforce.rest_requests("/query/01g") if r.path.endswith("-2000")]
    assert [r.status for r in second] == [401, 200]  # the same batch, re-sent once
    assert second[0].headers["authorization"] != second[1].headers["authorization"]


async def test_not_valid_for_the_rest_api_is_final_no_new_token(
    fake_salesforce: FakeSalesforce,
) -> None:
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        fake_salesforce.not_for_rest = True
        with pytest.raises(AuthenticationError, match="'api' OAuth scope") as caught:
            await client.limits()
    assert caught.value.details["errorCode"] == "INVALID_SESSION_ID"
    assert len(fake_salesforce.token_grants) == 1
    assert len(fake_salesforce.rest_requests()) == 1


async def test_a_session_refused_after_a_new_login_is_not_retried_again(
    fake_salesforce: FakeSalesforce,
) -> None:
    expired = [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        fake_salesforce.fail_next(401, expired, path_contains="/limits", times=5)
        with pytest.raises(AuthenticationError):
            await client.limits()
    assert len(fake_salesforce.token_grants) == 2
    assert len(fake_salesforce.rest_requests()) == 2


async def test_the_daily_limit_is_a_rate_limit_error_sent_once(
    fake_salesforce: FakeSalesforce,
) -> None:
    spent = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        fake_salesforce.fail_next(403, spent, times=10)
        with pytest.raises(RateLimitedError, match="daily API request limit") as caught:
            await client.count("SELECT COUNT() FROM Account")
    assert caught.value.transient is False
    assert caught.value.details["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert len(fake_salesforce.rest_requests()) == 1


# -- errors, retries, usage -----------------------------------------------------------------


async def test_the_error_array_keeps_code_fields_and_every_item(
    fake_salesforce: FakeSalesforce,
) -> None:
    errors = [
        {"errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Too big", "fields": ["A"]},
        {"errorCode": "STRING_TOO_LONG", "message": "Name: too long", "fields": ["Name"]},
    ]
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        fake_salesforce.fail_next(400, errors, path_contains="/sobjects/Account")
        with pytest.raises(InvalidRequestError, match="STRING_TOO_LONG") as caught:
            await client.create("Account", {"Name": "x"})
    details = caught.value.details
    assert details["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert details["fields"] == ["A"]
    assert [e["errorCode"] for e in details["errors"]] == [e["errorCode"] for e in errors]


async def test_a_5xx_is_retried_for_a_read_not_for_a_create(
    fake_salesforce: FakeSalesforce,
) -> None:
    down = [{"errorCode": "SERVER_UNAVAILABLE", "message": "try later"}]
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        fake_salesforce.fail_next(503, down, path_contains="/limits")
        assert "DailyApiRequests" in await client.limits()
        assert len(fake_salesforce.rest_requests("/limits")) == 2
        fake_salesforce.fail_next(503, down, path_contains="/sobjects/Account")
        with pytest.raises(ServiceUnavailableError):
            await client.create("Account", {"Name": "once"})
        assert len(fake_salesforce.rest_requests("/sobjects/Account")) == 1
    assert fake_salesforce.backend.records["Account"] == {}


async def test_usage_goes_into_stats_and_warns_once_past_the_threshold(
    fake_salesforce: FakeSalesforce, caplog: pytest.LogCaptureFixture
) -> None:
    config = managed_config(fake_salesforce, api_usage_warn_threshold=0.5)
    async with ManagedSalesforce(config) as client:
        await client.limits()
        assert client.stats().api_usage is not None
        assert client.stats().api_usage.used == fake_salesforce.api_used  # type: ignore[union-attr]
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        fake_salesforce.api_used = 60_000
        with caplog.at_level(logging.WARNING, logger="connector_adapters.salesforce"):
            await client.limits()
            await client.limits()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "60001 of 100000" in warnings[0].getMessage()  # the first answer over 50%


async def test_no_token_or_secret_in_errors_reprs_or_stats(
    fake_salesforce: FakeSalesforce,
) -> None:
    config = managed_config(fake_salesforce, "refresh_token")
    client = ManagedSalesforce(config)
    failures: list[ConnectorError] = []
    async with client:
        token = client.login.current.access_token  # type: ignore[union-attr]
        fake_salesforce.fail_next(500, [{"errorCode": "X", "message": "boom"}], times=10)
        try:
            await client.limits()
        except ConnectorError as error:
            failures.append(error)
        texts = [repr(client), repr(client.login.current), client.stats().model_dump_json()]
    assert failures
    texts += [t for f in failures for t in exception_texts(f)]
    assert not secret_leaks(texts, [token, REFRESH_TOKEN])


async def test_concurrent_calls_on_an_expired_session_share_one_new_token(
    fake_salesforce: FakeSalesforce,
) -> None:
    import asyncio

    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        fake_salesforce.expire_after = 0
        results = await asyncio.gather(*(client.limits() for _ in range(5)))
        assert client.stats().token_requests == 2
    assert all("DailyApiRequests" in r for r in results)
    assert len(fake_salesforce.token_grants) == 2


async def test_fields_salesforce_adds_are_kept(fake_salesforce: FakeSalesforce) -> None:
    answer = {"id": "001000000000001AAA", "success": True, "errors": [], "infos": ["new"]}
    async with ManagedSalesforce(managed_config(fake_salesforce)) as client:
        fake_salesforce.fail_next(201, answer, path_contains="/sobjects/Account")
        result = await client.create("Account", {"Name": "x"})
    assert result.id == "001000000000001AAA"
    assert result.model_extra == {"infos": ["new"]}
