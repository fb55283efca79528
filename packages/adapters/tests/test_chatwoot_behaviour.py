"""One behaviour suite for every Chatwoot client: MockChatwoot and ManagedChatwoot.

The managed client talks to the fake Chatwoot server, which holds every request
and response to Chatwoot's OpenAPI document; its backend is a MockChatwoot, which
the tests seed directly (``env.backend``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from adapters_chatwoot_fake import FakeChatwoot, managed_config

from connector_adapters.chatwoot import (
    ChatwootClient,
    ChatwootConfig,
    FilterCondition,
    ManagedChatwoot,
    MockChatwoot,
)
from connector_core import InvalidRequestError


@dataclass
class Env:
    client: ChatwootClient
    backend: MockChatwoot
    fake: FakeChatwoot | None

    def correlation_ids(self) -> list[str]:
        """The correlation id of every call the client made, in order."""
        if self.fake is None:
            return [cid for _, cid in self.backend.calls]
        return [
            r.headers.get("x-correlation-id", "")
            for r in self.fake.requests
            if r.path != "/api/v1/profile"  # the connect probe
        ]


@pytest.fixture(params=["mock", "managed"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    if request.param == "mock":
        mock = MockChatwoot()
        yield Env(mock, mock, None)
        return
    fake: FakeChatwoot = request.getfixturevalue("fake_chatwoot")
    async with ManagedChatwoot(managed_config(fake.url)) as client:
        yield Env(client, fake.backend, fake)


def test_both_implementations_satisfy_the_protocol() -> None:
    assert isinstance(MockChatwoot(), ChatwootClient)
    config = ChatwootConfig(base_url="http://127.0.0.1:9", account_id=1, api_access_token="t")
    assert isinstance(ManagedChatwoot(config), ChatwootClient)


# -- contacts -------------------------------------------------------------------------


async def test_iter_contacts_walks_every_page_until_an_empty_one(env: Env) -> None:
    ids = env.backend.seed_contacts(40)
    seen = [c.id async for c in env.client.iter_contacts()]
    assert seen == ids
    if env.fake is not None:
        pages = [dict(r.query).get("page") for r in env.fake.api_requests("/contacts")]
        assert pages == ["1", "2", "3", "4"]  # 15 + 15 + 10, then the empty page


async def test_list_contacts_pages_hold_fifteen(env: Env) -> None:
    env.backend.seed_contacts(20)
    first = await env.client.list_contacts(page=1)
    second = await env.client.list_contacts(page=2)
    third = await env.client.list_contacts(page=3)
    assert (len(first.contacts), len(second.contacts), len(third.contacts)) == (15, 5, 0)
    assert first.count == 20
    assert second.page == 2


async def test_list_contacts_sorts(env: Env) -> None:
    for name in ("carol", "alice", "bob"):
        await env.client.create_contact(inbox_id=1, name=name, email=f"{name}@example.com")
    ascending = await env.client.list_contacts(sort="name")
    descending = await env.client.list_contacts(sort="-name")
    assert [c.name for c in ascending.contacts] == ["alice", "bob", "carol"]
    assert [c.name for c in descending.contacts] == ["carol", "bob", "alice"]


async def test_unknown_sort_is_rejected_before_any_request(env: Env) -> None:
    with pytest.raises(InvalidRequestError, match="last_activity_at"):
        await env.client.list_contacts(sort="created_at")
    assert env.correlation_ids() == []


async def test_get_contact_and_missing_contact(env: Env) -> None:
    (cid,) = env.backend.seed_contacts(1)
    contact = await env.client.get_contact(cid)
    assert contact is not None
    assert contact.id == cid
    assert contact.email == f"contact{cid:06d}@example.com"
    assert await env.client.get_contact(cid + 1000) is None


async def test_search_finds_by_email_and_name(env: Env) -> None:
    await env.client.create_contact(inbox_id=1, name="Ada Lovelace", email="ada@example.com")
    await env.client.create_contact(inbox_id=1, name="Alan Turing", email="alan@example.com")
    by_email = await env.client.search_contacts("ada@")
    by_name = await env.client.search_contacts("turing")
    assert [c.name for c in by_email.contacts] == ["Ada Lovelace"]
    assert [c.email for c in by_name.contacts] == ["alan@example.com"]


@pytest.mark.parametrize("q", ["", "   "])
async def test_blank_search_is_rejected_before_any_request(env: Env, q: str) -> None:
    with pytest.raises(InvalidRequestError, match="'q'"):
        await env.client.search_contacts(q)
    assert env.correlation_ids() == []


async def test_create_contact_returns_the_contact(env: Env) -> None:
    created = await env.client.create_contact(
        inbox_id=1,
        name="Grace",
        email="grace@example.com",
        phone_number="+15550001",
        identifier="g-1",
        custom_attributes={"plan": "pro"},
    )
    assert created.id > 0
    assert (created.name, created.email, created.identifier) == (
        "Grace",
        "grace@example.com",
        "g-1",
    )
    assert created.custom_attributes == {"plan": "pro"}
    fetched = await env.client.get_contact(created.id)
    assert fetched is not None
    assert fetched.phone_number == "+15550001"


async def test_update_contact_merges_custom_attributes(env: Env) -> None:
    created = await env.client.create_contact(
        inbox_id=1, name="Linus", email="linus@example.com", custom_attributes={"a": "1"}
    )
    updated = await env.client.update_contact(
        created.id, name="Linus T", custom_attributes={"b": "2"}
    )
    assert updated is not None
    assert updated.name == "Linus T"
    assert updated.custom_attributes == {"a": "1", "b": "2"}
    assert updated.email == "linus@example.com"
    again = await env.client.get_contact(created.id)
    assert again is not None
    assert again.custom_attributes == {"a": "1", "b": "2"}


async def test_update_missing_contact_returns_none(env: Env) -> None:
    assert await env.client.update_contact(4242, name="nobody") is None


async def test_delete_contact(env: Env) -> None:
    (cid,) = env.backend.seed_contacts(1)
    assert await env.client.delete_contact(cid) is True
    assert await env.client.get_contact(cid) is None
    assert await env.client.delete_contact(cid) is False


async def test_filter_contacts(env: Env) -> None:
    env.backend.seed_contacts(5)
    await env.client.create_contact(
        inbox_id=1,
        name="Target",
        email="target@example.com",
        additional_attributes={"country_code": "de"},
    )
    equal = await env.client.filter_contacts(
        [
            FilterCondition(
                attribute_key="email", filter_operator="equal_to", values=["target@example.com"]
            )
        ]
    )
    assert [c.name for c in equal.contacts] == ["Target"]
    either = await env.client.filter_contacts(
        [
            FilterCondition(
                attribute_key="country_code",
                filter_operator="equal_to",
                values=["DE"],
                query_operator="OR",
            ),
            FilterCondition(attribute_key="name", filter_operator="contains", values=["contact 1"]),
        ]
    )
    assert sorted(c.name or "" for c in either.contacts) == ["Target", "contact 1"]


async def test_unknown_fields_are_kept(env: Env) -> None:
    (cid,) = env.backend.seed_contacts(1)
    stored = env.backend.contacts[cid]
    env.backend.contacts[cid] = stored.model_copy(update={"company_name": "Acme"})
    contact = await env.client.get_contact(cid)
    assert contact is not None
    assert (contact.model_extra or {}).get("company_name") == "Acme"


# -- conversations --------------------------------------------------------------------


async def _conversations(env: Env) -> dict[str, int]:
    b = env.backend
    ids = {}
    ids["open_inbox1"] = (await b.create_conversation(source_id="s1", inbox_id=1)).id
    ids["open_inbox2_team"] = (
        await b.create_conversation(source_id="s2", inbox_id=2, team_id=7, assignee_id=b.user_id)
    ).id
    ids["resolved"] = (
        await b.create_conversation(source_id="s3", inbox_id=1, status="resolved")
    ).id
    ids["labelled"] = (
        await b.create_conversation(source_id="s4", inbox_id=1, labels=["vip"], assignee_id=99)
    ).id
    b.calls.clear()
    return ids


async def test_list_conversations_filters(env: Env) -> None:
    ids = await _conversations(env)
    default = await env.client.list_conversations()
    assert {c.id for c in default.conversations} == {
        ids["open_inbox1"],
        ids["open_inbox2_team"],
        ids["labelled"],
    }
    resolved = await env.client.list_conversations(status="resolved")
    assert [c.id for c in resolved.conversations] == [ids["resolved"]]
    every = await env.client.list_conversations(status="all")
    assert len(every.conversations) == 4
    inbox2 = await env.client.list_conversations(inbox_id=2)
    assert [c.id for c in inbox2.conversations] == [ids["open_inbox2_team"]]
    team = await env.client.list_conversations(team_id=7)
    assert [c.id for c in team.conversations] == [ids["open_inbox2_team"]]
    labelled = await env.client.list_conversations(labels=["vip", "other"])
    assert [c.id for c in labelled.conversations] == [ids["labelled"]]
    mine = await env.client.list_conversations(assignee_type="me")
    assert [c.id for c in mine.conversations] == [ids["open_inbox2_team"]]
    unassigned = await env.client.list_conversations(assignee_type="unassigned")
    assert [c.id for c in unassigned.conversations] == [ids["open_inbox1"]]
    assert unassigned.counts["all_count"] == 3


async def test_iter_conversations_walks_every_page(env: Env) -> None:
    for i in range(30):
        await env.backend.create_conversation(source_id=f"s{i}", inbox_id=1)
    seen = [c.id async for c in env.client.iter_conversations(status="open")]
    assert seen == list(range(1, 31))


async def test_create_get_and_toggle_conversation(env: Env) -> None:
    contact = await env.client.create_contact(inbox_id=1, name="Conv", email="conv@example.com")
    created = await env.client.create_conversation(
        source_id="src-conv", inbox_id=1, contact_id=contact.id, message="hello"
    )
    assert created.status == "open"
    assert created.contact_id == contact.id
    fetched = await env.client.get_conversation(created.id)
    assert fetched is not None
    assert fetched.inbox_id == 1
    toggled = await env.client.toggle_status(created.id, "resolved")
    assert toggled is not None
    assert (toggled.success, toggled.current_status) == (True, "resolved")
    after = await env.client.get_conversation(created.id)
    assert after is not None
    assert after.status == "resolved"
    messages = await env.client.list_messages(created.id)
    assert [m.content for m in messages] == ["hello"]


async def test_missing_conversation(env: Env) -> None:
    assert await env.client.get_conversation(999) is None
    assert await env.client.toggle_status(999, "open") is None
    assert await env.client.list_messages(999) == []


# -- messages -------------------------------------------------------------------------


async def test_messages_with_before_and_after_cursors(env: Env) -> None:
    conv = await env.client.create_conversation(source_id="src", inbox_id=1)
    ids = [(await env.client.create_message(conv.id, content=f"m{i}")).id for i in range(25)]
    latest = await env.client.list_messages(conv.id)
    assert [m.id for m in latest] == ids[-20:]
    older = await env.client.list_messages(conv.id, before=latest[0].id)
    assert [m.id for m in older] == ids[:5]
    newer = await env.client.list_messages(conv.id, after=ids[2])
    assert [m.id for m in newer] == ids[3:]


async def test_create_message_fields(env: Env) -> None:
    conv = await env.client.create_conversation(source_id="src", inbox_id=1)
    note = await env.client.create_message(
        conv.id, content="internal", message_type="outgoing", private=True
    )
    incoming = await env.client.create_message(conv.id, content="hi", message_type="incoming")
    assert (note.content, note.private, note.message_type) == ("internal", True, "outgoing")
    assert (incoming.private, incoming.message_type) == (False, "incoming")
    with pytest.raises(InvalidRequestError, match="message_type"):
        await env.client.create_message(conv.id, content="x", message_type="activity")


# -- correlation ids ------------------------------------------------------------------


async def test_correlation_id_goes_with_every_call(env: Env) -> None:
    (cid,) = env.backend.seed_contacts(1)
    await env.client.get_contact(cid, correlation_id="corr-1")
    await env.client.list_contacts(correlation_id="corr-2")
    await env.client.search_contacts("contact", correlation_id="corr-3")
    conv = await env.client.create_conversation(source_id="s", inbox_id=1, correlation_id="corr-4")
    await env.client.create_message(conv.id, content="x", correlation_id="corr-5")
    ids = env.correlation_ids()
    for expected in ("corr-1", "corr-2", "corr-3", "corr-4", "corr-5"):
        assert expected in ids
    assert all(ids), "every call carries a correlation id"
    before = len(ids)
    await env.client.get_contact(cid)
    generated = env.correlation_ids()[before:]
    assert generated
    assert all(generated)


async def test_iteration_sends_one_correlation_id_for_every_page(env: Env) -> None:
    env.backend.seed_contacts(20)
    for i in range(30):
        await env.backend.create_conversation(source_id=f"s{i}", inbox_id=1)
    before = len(env.correlation_ids())
    assert len([c async for c in env.client.iter_contacts(correlation_id="walk-1")]) == 20
    assert env.correlation_ids()[before:] == ["walk-1"] * 3  # 15 + 5, then the empty page
    before = len(env.correlation_ids())
    assert len([c async for c in env.client.iter_conversations()]) == 30
    generated = env.correlation_ids()[before:]
    assert len(generated) == 3  # 25 + 5, then the empty page
    assert len(set(generated)) == 1
    assert generated[0]
