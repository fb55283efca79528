"""ManagedChatwoot against the contract-checked fake server: limits, errors, headers."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from adapters_chatwoot_fake import TOKEN, AsgiServer, FakeChatwoot, managed_config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector_adapters.chatwoot import ManagedChatwoot
from connector_core import (
    AuthenticationError,
    EventInfo,
    LifecycleEvent,
    RateLimitedError,
    RetrySettings,
    SerializationError,
)


async def test_pagination_across_many_pages(fake_chatwoot: FakeChatwoot) -> None:
    ids = fake_chatwoot.backend.seed_contacts(100)
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        seen = [c.id async for c in client.iter_contacts(sort="email")]
    assert seen == ids
    pages = [dict(r.query)["page"] for r in fake_chatwoot.api_requests("/contacts")]
    assert pages == [str(p) for p in range(1, 9)]  # 6 full pages, 10 more, then empty


async def test_429_retry_after_is_honoured(fake_chatwoot: FakeChatwoot) -> None:
    fake_chatwoot.backend.seed_contacts(3)
    fake_chatwoot.fail_next(429, retry_after="1", path_contains="/contacts")
    retries: list[EventInfo] = []
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        client.http.on(LifecycleEvent.RETRY, retries.append)
        page = await client.list_contacts()
    assert len(page.contacts) == 3
    statuses = [r.status for r in fake_chatwoot.api_requests("/contacts")]
    assert statuses == [429, 200]
    assert [e.delay for e in retries] == [1.0]  # exactly what Retry-After said


async def test_429_on_create_is_resent_once_after_retry_after(fake_chatwoot: FakeChatwoot) -> None:
    fake_chatwoot.fail_next(429, retry_after="0", path_contains="/contacts")
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        retries: list[EventInfo] = []
        client.http.on(LifecycleEvent.RETRY, retries.append)
        created = await client.create_contact(inbox_id=1, name="Once", email="once@example.com")
        # Resent on the connector's one road: a RETRY event and a retry in the stats.
        assert [e.operation for e in retries] == ["chatwoot.create_contact"]
        assert client.http.stats.operations["chatwoot.create_contact"].retries == 1
    assert [r.status for r in fake_chatwoot.api_requests("/contacts")] == [429, 200]
    assert list(fake_chatwoot.backend.contacts) == [created.id]


async def test_429_beyond_the_attempts_raises_rate_limited(fake_chatwoot: FakeChatwoot) -> None:
    fake_chatwoot.fail_next(429, retry_after="0", times=3, path_contains="/contacts")
    config = managed_config(fake_chatwoot.url, retry=RetrySettings(max_attempts=3, initial_delay=0))
    async with ManagedChatwoot(config) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.list_contacts()
    assert info.value.retry_after == 0.0
    assert len(fake_chatwoot.api_requests("/contacts")) == 3


async def test_401_names_the_token_setting_and_hides_the_token(
    fake_chatwoot: FakeChatwoot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-value-123"
    config = managed_config(fake_chatwoot.url, api_access_token=wrong)
    async with ManagedChatwoot(config) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.list_contacts()
    message = str(info.value)
    assert "api_access_token" in message
    assert wrong not in message
    assert wrong not in repr(info.value)
    assert info.value.details["status"] == 401
    assert len(fake_chatwoot.api_requests("/contacts")) == 1  # never retried
    assert caplog.records, "the failure was logged"
    assert wrong not in caplog.text


async def test_check_reports_a_rejected_token(fake_chatwoot: FakeChatwoot) -> None:
    good = await ManagedChatwoot(managed_config(fake_chatwoot.url)).check()
    bad = await ManagedChatwoot(managed_config(fake_chatwoot.url, api_access_token="nope")).check()
    assert good.ok
    assert not bad.ok
    assert bad.error_code is not None
    assert bad.error_code.value == "authentication"


async def test_every_request_carries_the_token_and_a_correlation_id(
    fake_chatwoot: FakeChatwoot,
) -> None:
    fake_chatwoot.backend.seed_contacts(2)
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        await client.list_contacts()
        await client.get_contact(1)
        await client.search_contacts("contact")
        await client.update_contact(1, name="x")
        await client.delete_contact(2)
        conv = await client.create_conversation(source_id="s", inbox_id=1)
        await client.toggle_status(conv.id, "resolved")
        await client.list_messages(conv.id)
    requests = fake_chatwoot.requests
    assert len(requests) >= 10
    assert all(r.headers.get("api_access_token") == TOKEN for r in requests)
    ids = [r.headers.get("x-correlation-id") for r in requests]
    assert all(ids)
    # One call, one id: an update's follow-up GET shares the PUT's id.
    put = next(i for i, r in enumerate(requests) if r.method == "PUT")
    assert requests[put + 1].method == "GET"
    assert ids[put] == ids[put + 1]


async def test_search_takes_from_its_own_bucket(fake_chatwoot: FakeChatwoot) -> None:
    fake_chatwoot.backend.seed_contacts(1)
    config = managed_config(fake_chatwoot.url, search_requests_per_minute=60, search_burst=2)
    async with ManagedChatwoot(config) as client:
        assert client.search_limiter.rate == pytest.approx(1.0)
        await client.list_contacts()
        await client.list_contacts()
        assert client.search_limiter.available == pytest.approx(2.0, abs=0.1)
        await client.search_contacts("contact")
        await client.search_contacts("contact")
        assert client.search_limiter.available < 1.0


def test_default_limits_are_chatwoots(fake_chatwoot: FakeChatwoot) -> None:
    client = ManagedChatwoot(managed_config(fake_chatwoot.url))
    assert client.http.rate_limiter is not None
    assert client.http.rate_limiter.rate == pytest.approx(3000 / 60)
    assert client.search_limiter.rate == pytest.approx(100 / 60)


def test_token_never_in_repr_or_dump(fake_chatwoot: FakeChatwoot) -> None:
    config = managed_config(fake_chatwoot.url)
    client = ManagedChatwoot(config)
    for text in (repr(client), repr(config), str(config), str(config.model_dump())):
        assert TOKEN not in text
    assert TOKEN not in config.connection_string()


async def test_server_shapes_are_accepted_too() -> None:
    """Chatwoot's own server answers create (and update) in shapes the document lacks."""
    requests: list[str] = []

    async def endpoint(request: Request) -> Response:
        requests.append(request.method)
        if request.url.path == "/api/v1/profile":
            return JSONResponse({"id": 1})
        if request.method == "POST":
            contact = {"id": 5, "name": "S", "email": None, "phone_number": None}
            return JSONResponse({"payload": {"contact": contact, "contact_inbox": {}}})
        return JSONResponse({"payload": {"id": 5, "name": "T", "email": None}})

    server = AsgiServer(
        Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "PUT"])])
    )
    server.start()
    try:
        async with ManagedChatwoot(managed_config(server.url)) as client:
            created = await client.create_contact(inbox_id=1, name="S")
            updated = await client.update_contact(5, name="T")
    finally:
        server.stop()
    assert (created.id, created.name, created.email) == (5, "S", None)
    assert updated is not None
    assert updated.name == "T"
    assert requests == ["GET", "POST", "PUT"]  # a 200 update needs no follow-up GET


DEEP = b"[" * 100_000 + b"]" * 100_000  # valid JSON, far deeper than Python's json decodes


@pytest.mark.parametrize(
    ("path", "call"),
    [
        ("/contacts", lambda c: c.list_contacts()),
        ("/contacts/1", lambda c: c.get_contact(1)),
        ("/conversations", lambda c: c.list_conversations()),
        ("/messages", lambda c: c.list_messages(1)),
    ],
    ids=["list_contacts", "get_contact", "list_conversations", "list_messages"],
)
async def test_a_deeply_nested_response_is_a_serialization_error(
    fake_chatwoot: FakeChatwoot, path: str, call: Any
) -> None:
    fake_chatwoot.respond_next(DEEP, path_contains=path)
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        with pytest.raises(SerializationError) as info:
            await call(client)
    assert not isinstance(info.value, RecursionError)


@pytest.mark.parametrize(
    ("path", "body", "call"),
    [
        # An epoch beyond datetime's range (OverflowError inside pydantic's validator).
        ("/contacts", {"meta": {"count": 1}, "payload": [{"id": 1, "created_at": 1e300}]},
         lambda c: c.list_contacts()),
        ("/contacts/1", {"payload": {"id": 1, "last_activity_at": "9" * 30}},
         lambda c: c.get_contact(1)),
        # A create answer whose payload array holds no object.
        ("/contacts", {"id": 5, "payload": [1]},
         lambda c: c.create_contact(inbox_id=1, name="x")),
        ("/messages", {"payload": [{"id": 1, "created_at": -1e300}]},
         lambda c: c.list_messages(1)),
    ],
    ids=["epoch-1e300", "epoch-30-digits", "create-payload-not-object", "message-epoch"],
)  # fmt: skip
async def test_out_of_range_or_odd_payloads_are_serialization_errors(
    fake_chatwoot: FakeChatwoot, path: str, body: dict[str, Any], call: Any
) -> None:
    fake_chatwoot.respond_next(json.dumps(body).encode(), path_contains=path)
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        with pytest.raises(SerializationError, match="unexpected Chatwoot response"):
            await call(client)


async def test_non_finite_numbers_in_counts_and_ids_are_left_out(
    fake_chatwoot: FakeChatwoot,
) -> None:
    body = (
        b'{"data": {"meta": {"all_count": 1e400, "mine_count": NaN, "unassigned_count": 2},'
        b' "payload": [{"id": 7, "meta": {"sender": {"id": 1e400},'
        b' "assignee": {"id": NaN}}}]}}'
    )  # Python's json reads 1e400 as inf and takes NaN
    fake_chatwoot.respond_next(body, path_contains="/conversations")
    async with ManagedChatwoot(managed_config(fake_chatwoot.url)) as client:
        page = await client.list_conversations()
    assert page.counts == {"unassigned_count": 2}
    (conversation,) = page.conversations
    assert (conversation.contact_id, conversation.assignee_id) == (None, None)
