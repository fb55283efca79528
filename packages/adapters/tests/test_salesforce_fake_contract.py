"""The fake Salesforce itself: it must refuse what the Postman collection does not
describe, and a token endpoint that verifies assertions."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from adapters_salesforce_fake import (
    CLIENT_ID,
    REPO_ROOT,
    USERNAME,
    FakeSalesforce,
    SalesforceContract,
    contract_dir,
    make_key_pair,
)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_the_contract_is_salesforces_collection(salesforce_contract: SalesforceContract) -> None:
    assert salesforce_contract.directory == contract_dir(REPO_ROOT)
    sources = {r.source for r in salesforce_contract.requests}
    assert {"rest/query.json", "auth/jwt_bearer_token_flow.json", "rest/limit.json"} <= sources
    assert len(sources) > 80


def test_a_missing_collection_fails_loudly() -> None:
    with pytest.raises(FileNotFoundError, match="contracts/salesforce/postman, vendored"):
        SalesforceContract(contract_dir(REPO_ROOT) / "absent")


def _assertion(fake: FakeSalesforce, key: str | None = None, **claims: object) -> str:
    body = {"iss": CLIENT_ID, "sub": USERNAME, "aud": fake.login_url, "exp": time.time() + 60}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key or fake.private_key, algorithm="RS256")


def _token(fake: FakeSalesforce, form: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{fake.login_url}/services/oauth2/token", data=form)


def _bearer(fake: FakeSalesforce) -> dict[str, str]:
    answer = _token(fake, {"grant_type": JWT_GRANT, "assertion": _assertion(fake)})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"aud": "https://login.salesforce.com"}, "InvalidAudienceError"),
        ({"iss": "someone-else"}, "InvalidIssuerError"),
        ({"exp": time.time() - 600}, "ExpiredSignatureError"),
        ({"exp": None}, "MissingRequiredClaimError"),
        ({"sub": "other@example.com"}, "hasn't approved"),
    ],
)
def test_the_token_endpoint_checks_every_claim(
    fake_salesforce: FakeSalesforce, claims: dict[str, object], description: str
) -> None:
    answer = _token(
        fake_salesforce,
        {"grant_type": JWT_GRANT, "assertion": _assertion(fake_salesforce, **claims)},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert description in answer.json()["error_description"]


def test_the_token_endpoint_checks_the_signature(fake_salesforce: FakeSalesforce) -> None:
    other, _ = make_key_pair()
    forged = _assertion(fake_salesforce, key=other)
    answer = _token(fake_salesforce, {"grant_type": JWT_GRANT, "assertion": forged})
    assert answer.status_code == 400
    assert "InvalidSignatureError" in answer.json()["error_description"]


def test_a_valid_assertion_gets_a_token_and_the_instance_url(
    fake_salesforce: FakeSalesforce,
) -> None:
    answer = _token(
        fake_salesforce, {"grant_type": JWT_GRANT, "assertion": _assertion(fake_salesforce)}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["instance_url"] == fake_salesforce.instance_url != fake_salesforce.login_url
    assert "expires_in" not in body
    assert fake_salesforce.violations == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "problem"),
    [
        ("GET", "/services/data/v62.0/nowhere", {}, "path not in the collection"),
        ("PUT", "/services/data/v62.0/sobjects/Account/001000000000000AAA", {}, "method"),
        ("GET", "/services/data/v62.0/query/", {}, "required query parameters missing"),
        ("GET", "/services/data/v62.0/query/", {"params": {"q": "x", "batch": "5"}}, "batch"),
        ("GET", "/services/data/v62.0/sobjects/Account/001000000000000AAA",
         {"params": {"fields": "Name"}}, "fields"),
        ("POST", "/services/data/v62.0/sobjects/Account", {"content": b"[1]",
         "headers": {"Content-Type": "application/json"}}, "not a JSON object"),
        ("POST", "/services/data/v62.0/sobjects/Account", {"data": {"Name": "x"}}, "Content-Type"),
        ("GET", "/services/data/v62.0/limits", {"content": b"{}"}, "a body where"),
        ("GET", "/services/oauth2/token", {}, "on the instance host"),
        # composite and collections: the body's keys are the collection's example's
        ("POST", "/services/data/v62.0/composite/", {"json": {"allOrNone": True}},
         "body keys missing: ['compositeRequest']"),
        ("POST", "/services/data/v62.0/composite/", {"json": {"compositeRequest": [
            {"method": "PUT", "url": "/services/data/v62.0/sobjects/Account/x",
             "referenceId": "a"}]}}, "composite subrequest: PUT"),
        ("POST", "/services/data/v62.0/composite/", {"json": {"compositeRequest": [
            {"method": "GET", "url": "/services/data/v62.0/query/", "referenceId": "a"}]}},
         "composite subrequest: GET (rest/query.json): required query parameters missing"),
        ("POST", "/services/data/v62.0/composite/sobjects", {"json": {"records": [],
         "batchSize": 3}}, "body keys not in the collection: ['batchSize']"),
        ("PATCH", "/services/data/v62.0/composite/sobjects/Account", {"json": {"records": [
            {"Name": "no attributes"}]}}, "without attributes.type"),
        # Bulk API 2.0
        ("POST", "/services/data/v62.0/jobs/ingest", {"json": {"object": "Account"}},
         "body keys missing: ['operation']"),
        ("PUT", "/services/data/v62.0/jobs/ingest/750x/batches", {"content": b"Name\nx\n",
         "headers": {"Content-Type": "application/json"}}, "expected 'text/csv'"),
        ("GET", "/services/data/v62.0/jobs/query/750x/results", {"params": {"page": "2"}},
         "query parameters not in the collection: ['page']"),
    ],
)  # fmt: skip
def test_requests_outside_the_collection_are_violations(
    fake_salesforce: FakeSalesforce,
    method: str,
    path: str,
    kwargs: dict[str, object],
    problem: str,
) -> None:
    headers = {**_bearer(fake_salesforce), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    answer = httpx.request(
        method,
        fake_salesforce.instance_url + path,
        headers=headers,
        **kwargs,  # type: ignore[arg-type]
    )
    assert answer.status_code == 400
    assert any(problem in v for v in fake_salesforce.violations), fake_salesforce.violations
    fake_salesforce.violations.clear()  # seen and asserted: not a failure of this test


def test_a_token_request_outside_the_collection_is_a_violation(
    fake_salesforce: FakeSalesforce,
) -> None:
    answer = _token(fake_salesforce, {"grant_type": JWT_GRANT, "assertion": "x", "scope": "api"})
    assert answer.status_code == 400
    assert any("scope" in v for v in fake_salesforce.violations), fake_salesforce.violations
    fake_salesforce.violations.clear()


def test_rest_without_a_valid_token_is_session_expired(fake_salesforce: FakeSalesforce) -> None:
    answer = httpx.get(
        f"{fake_salesforce.instance_url}/services/data/v62.0/limits",
        headers={"Authorization": "Bearer 00Dfake!stale"},
    )
    assert answer.status_code == 401
    assert answer.json() == [
        {"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}
    ]
    assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_a_valid_exchange_has_no_violations(fake_salesforce: FakeSalesforce) -> None:
    fake_salesforce.backend.seed("Account", [{"Name": f"a{i}"} for i in range(2500)])
    answer = httpx.get(
        f"{fake_salesforce.instance_url}/services/data/v62.0/query/",
        params={"q": "SELECT Id FROM Account"},
        headers={**_bearer(fake_salesforce), "Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["totalSize"], body["done"], len(body["records"])) == (2500, False, 2000)
    assert body["nextRecordsUrl"].startswith("/services/data/v62.0/query/01g")
    assert fake_salesforce.violations == []
