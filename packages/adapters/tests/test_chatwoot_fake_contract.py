"""The fake server itself: it must catch what Chatwoot's document does not describe."""

from __future__ import annotations

import httpx
import pytest
from adapters_chatwoot_fake import (
    REPO_ROOT,
    TOKEN,
    ChatwootContract,
    FakeChatwoot,
    contract_path,
)


def test_the_contract_is_chatwoots_document(chatwoot_contract: ChatwootContract) -> None:
    assert chatwoot_contract.path == contract_path(REPO_ROOT)
    assert chatwoot_contract.document["openapi"] == "3.0.4"
    assert "/api/v1/accounts/{account_id}/contacts/search" in chatwoot_contract.document["paths"]


def test_a_missing_document_fails_loudly() -> None:
    with pytest.raises(FileNotFoundError, match=r"application_swagger\.json, vendored"):
        ChatwootContract(contract_path(REPO_ROOT).with_name("absent.json"))


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "problem"),
    [
        ("GET", "/api/v1/accounts/1/nowhere", {}, "path not in the document"),
        ("DELETE", "/api/v1/accounts/1/contacts", {}, "method not in the document"),
        ("GET", "/api/v1/accounts/1/contacts", {"params": {"per_page": "5"}}, "per_page"),
        ("GET", "/api/v1/accounts/1/contacts", {"params": {"sort": "created"}}, "sort"),
        ("GET", "/api/v1/accounts/1/contacts", {"params": {"page": "one"}}, "page"),
        ("POST", "/api/v1/accounts/1/contacts", {"json": {"name": "no inbox"}}, "inbox_id"),
        ("PUT", "/api/v1/accounts/1/contacts/1", {"json": {"name": 5}}, "not of type"),
        ("GET", "/api/v1/accounts/1/contacts", {"headers": {"api_access_token": None}}, "Security"),
    ],
)
def test_requests_outside_the_document_are_violations(
    fake_chatwoot: FakeChatwoot, method: str, path: str, kwargs: dict[str, object], problem: str
) -> None:
    headers = {"api_access_token": TOKEN}
    extra = kwargs.pop("headers", None)
    if isinstance(extra, dict):
        headers = {k: v for k, v in {**headers, **extra}.items() if v is not None}
    response = httpx.request(method, fake_chatwoot.url + path, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert any(problem in v for v in fake_chatwoot.violations), fake_chatwoot.violations
    fake_chatwoot.violations.clear()  # seen and asserted: not a failure of this test


def test_responses_are_checked_too(fake_chatwoot: FakeChatwoot) -> None:
    contract = fake_chatwoot.contract
    (cid,) = fake_chatwoot.backend.seed_contacts(1)
    contact = fake_chatwoot.backend.contacts[cid]
    fake_chatwoot.backend.contacts[cid] = contact.model_copy(update={"availability_status": "busy"})
    response = httpx.get(
        f"{fake_chatwoot.url}/api/v1/accounts/1/contacts/{cid}", headers={"api_access_token": TOKEN}
    )
    assert response.status_code == 200
    assert any("-> 200" in v for v in fake_chatwoot.violations), fake_chatwoot.violations
    fake_chatwoot.violations.clear()
    assert contract.template("/api/v1/accounts/1/contacts/search").endswith("/search")  # type: ignore[union-attr]


def test_a_valid_exchange_has_no_violations(fake_chatwoot: FakeChatwoot) -> None:
    fake_chatwoot.backend.seed_contacts(3)
    response = httpx.get(
        f"{fake_chatwoot.url}/api/v1/accounts/1/contacts",
        params={"page": 1, "sort": "-email"},
        headers={"api_access_token": TOKEN},
    )
    assert response.status_code == 200
    assert response.json()["meta"] == {"count": 3, "current_page": "1"}
    assert fake_chatwoot.violations == []
