"""MockChatwoot: the Chatwoot client in memory, for offline use, self-hosting and tests."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, Self

from connector_adapters.chatwoot._client import (
    CONTACTS_PER_PAGE,
    PagedIterators,
    check_message_type,
    check_page,
    check_search_query,
    check_sort,
    check_toggle_status,
    new_correlation_id,
)
from connector_adapters.chatwoot._models import (
    AssigneeType,
    ChatwootContact,
    ChatwootConversation,
    ChatwootMessage,
    ContactPage,
    ConversationPage,
    ConversationStatus,
    ConversationStatusFilter,
    FilterCondition,
    ToggleableStatus,
    ToggleStatusResult,
)
from connector_core import CheckResult

CONVERSATIONS_PER_PAGE = 25
MESSAGES_BEFORE = 20
MESSAGES_AFTER = 100


def _sort_key(field: str) -> Any:
    def key(contact: ChatwootContact) -> tuple[bool, Any]:
        value = getattr(contact, field)
        if isinstance(value, str):
            value = value.lower()
        return (value is None, value if value is not None else 0)

    return key


try:
    _VERSION = version("connector-adapters")
except PackageNotFoundError:  # pragma: no cover
    _VERSION = "0.0.0"


class MockChatwoot(PagedIterators):
    """An in-memory Chatwoot account that behaves like the managed client.

    It follows Chatwoot's rules (15 contacts per page, sort names, merged custom
    attributes on update, message cursors, blank search rejected) and never raises
    for a missing item: lookups return None, deletes return False, lists are empty.
    ``calls`` records ``(operation, correlation_id)`` of every call. ``user_id`` is
    the agent ``assignee_type="me"`` refers to.
    """

    name: ClassVar[str] = "chatwoot-mock"
    version: ClassVar[str] = _VERSION

    def __init__(self, *, account_id: int = 1, user_id: int = 1) -> None:
        self.account_id = account_id
        self.user_id = user_id
        self.contacts: dict[int, ChatwootContact] = {}
        self.conversations: dict[int, ChatwootConversation] = {}
        self.messages: dict[int, list[ChatwootMessage]] = {}
        self.calls: list[tuple[str, str]] = []
        self._connected = False
        self._contact_ids = itertools.count(1)
        self._conversation_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"MockChatwoot(account_id={self.account_id}, contacts={len(self.contacts)})"

    # -- lifecycle (nothing to open) ----------------------------------------------------

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def ping(self) -> float:
        """Nothing to reach: the time of one step of the event loop, in seconds."""
        started = time.perf_counter()
        await asyncio.sleep(0)
        return max(time.perf_counter() - started, 1e-9)

    async def check(self) -> CheckResult:
        return CheckResult(ok=True, connector=self.name, latency=0.0)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    def _call(self, operation: str, correlation_id: str | None) -> str:
        cid = new_correlation_id(correlation_id)
        self.calls.append((operation, cid))
        return cid

    # -- seeding ------------------------------------------------------------------------

    def seed_contacts(self, n: int, *, inbox_id: int = 1, prefix: str = "contact") -> list[int]:
        """Add ``n`` contacts named ``{prefix} {i}`` with unique emails; returns their ids."""
        ids = []
        for _ in range(n):
            cid = next(self._contact_ids)
            self.contacts[cid] = self._new_contact(
                cid,
                inbox_id,
                {
                    "name": f"{prefix} {cid}",
                    "email": f"{prefix}{cid:06d}@example.com",
                    "phone_number": f"+1555{cid:07d}",
                    "identifier": f"ext-{cid}",
                },
            )
            ids.append(cid)
        return ids

    def _new_contact(self, cid: int, inbox_id: int, fields: Mapping[str, Any]) -> ChatwootContact:
        now = int(time.time())
        data = {k: v for k, v in fields.items() if v is not None}
        return ChatwootContact.model_validate(
            {
                "id": cid,
                "availability_status": "offline",
                "thumbnail": "",
                "created_at": now,
                "last_activity_at": None,
                "contact_inboxes": [
                    {
                        "source_id": f"src-{cid}",
                        "inbox": {
                            "id": inbox_id,
                            "name": f"Inbox {inbox_id}",
                            "channel_type": "Channel::Api",
                        },
                    }
                ],
                **data,
            }
        )

    # -- contacts -----------------------------------------------------------------------

    def _page(self, contacts: list[ChatwootContact], page: int) -> ContactPage:
        start = (page - 1) * CONTACTS_PER_PAGE
        return ContactPage(
            contacts=[c.model_copy(deep=True) for c in contacts[start : start + CONTACTS_PER_PAGE]],
            count=len(contacts),
            page=page,
        )

    def _sorted(self, contacts: list[ChatwootContact], sort: str | None) -> list[ChatwootContact]:
        ordered = sorted(contacts, key=lambda c: c.id)
        if sort is None:
            return ordered
        field = sort.lstrip("-")
        if sort.startswith("-"):
            present = [c for c in ordered if getattr(c, field) is not None]
            missing = [c for c in ordered if getattr(c, field) is None]
            return sorted(present, key=_sort_key(field), reverse=True) + missing
        return sorted(ordered, key=_sort_key(field))

    async def list_contacts(
        self, *, page: int = 1, sort: str | None = None, correlation_id: str | None = None
    ) -> ContactPage:
        check_page(page)
        check_sort(sort)
        self._call("list_contacts", correlation_id)
        return self._page(self._sorted(list(self.contacts.values()), sort), page)

    async def get_contact(
        self, contact_id: int, *, correlation_id: str | None = None
    ) -> ChatwootContact | None:
        self._call("get_contact", correlation_id)
        contact = self.contacts.get(contact_id)
        return contact.model_copy(deep=True) if contact is not None else None

    async def search_contacts(
        self,
        q: str,
        *,
        page: int = 1,
        sort: str | None = None,
        correlation_id: str | None = None,
    ) -> ContactPage:
        needle = check_search_query(q).lower()
        check_page(page)
        check_sort(sort)
        self._call("search_contacts", correlation_id)
        found = [
            c
            for c in self.contacts.values()
            if any(
                needle in (value or "").lower()
                for value in (c.name, c.email, c.phone_number, c.identifier)
            )
        ]
        return self._page(self._sorted(found, sort), page)

    async def create_contact(
        self,
        *,
        inbox_id: int,
        name: str | None = None,
        email: str | None = None,
        phone_number: str | None = None,
        identifier: str | None = None,
        blocked: bool | None = None,
        additional_attributes: Mapping[str, Any] | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> ChatwootContact:
        self._call("create_contact", correlation_id)
        cid = next(self._contact_ids)
        contact = self._new_contact(
            cid,
            inbox_id,
            {
                "name": name,
                "email": email,
                "phone_number": phone_number,
                "identifier": identifier,
                "blocked": blocked,
                "additional_attributes": dict(additional_attributes or {}),
                "custom_attributes": dict(custom_attributes or {}),
            },
        )
        self.contacts[cid] = contact
        return contact.model_copy(deep=True)

    async def update_contact(
        self,
        contact_id: int,
        *,
        name: str | None = None,
        email: str | None = None,
        phone_number: str | None = None,
        identifier: str | None = None,
        blocked: bool | None = None,
        additional_attributes: Mapping[str, Any] | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> ChatwootContact | None:
        self._call("update_contact", correlation_id)
        contact = self.contacts.get(contact_id)
        if contact is None:
            return None
        changes: dict[str, Any] = {
            k: v
            for k, v in (
                ("name", name),
                ("email", email),
                ("phone_number", phone_number),
                ("identifier", identifier),
                ("blocked", blocked),
            )
            if v is not None
        }
        if additional_attributes is not None:
            changes["additional_attributes"] = {
                **contact.additional_attributes,
                **additional_attributes,
            }
        if custom_attributes is not None:
            # Chatwoot merges custom attributes on update instead of replacing them.
            changes["custom_attributes"] = {**contact.custom_attributes, **custom_attributes}
        updated = contact.model_copy(update=changes, deep=True)
        self.contacts[contact_id] = updated
        return updated.model_copy(deep=True)

    async def delete_contact(self, contact_id: int, *, correlation_id: str | None = None) -> bool:
        self._call("delete_contact", correlation_id)
        return self.contacts.pop(contact_id, None) is not None

    async def filter_contacts(
        self,
        conditions: Sequence[FilterCondition],
        *,
        page: int = 1,
        correlation_id: str | None = None,
    ) -> ContactPage:
        check_page(page)
        self._call("filter_contacts", correlation_id)
        found = [c for c in self.contacts.values() if _matches(c, conditions)]
        return self._page(self._sorted(found, None), page)

    # -- conversations ------------------------------------------------------------------

    async def list_conversations(
        self,
        *,
        status: ConversationStatusFilter | None = None,
        assignee_type: AssigneeType | None = None,
        inbox_id: int | None = None,
        team_id: int | None = None,
        labels: Sequence[str] | None = None,
        page: int = 1,
        correlation_id: str | None = None,
    ) -> ConversationPage:
        check_page(page)
        self._call("list_conversations", correlation_id)
        wanted_status = status or "open"
        base = [
            c
            for c in sorted(self.conversations.values(), key=lambda c: c.id)
            if (wanted_status == "all" or c.status == wanted_status)
            and (inbox_id is None or c.inbox_id == inbox_id)
            and (team_id is None or _team_id(c) == team_id)
            and (not labels or set(labels) & set(c.labels))
        ]
        counts = {
            "mine_count": sum(1 for c in base if c.assignee_id == self.user_id),
            "unassigned_count": sum(1 for c in base if c.assignee_id is None),
            "assigned_count": sum(1 for c in base if c.assignee_id is not None),
            "all_count": len(base),
        }
        kind = assignee_type or "all"
        selected = [
            c
            for c in base
            if kind == "all"
            or (kind == "me" and c.assignee_id == self.user_id)
            or (kind == "unassigned" and c.assignee_id is None)
            or (kind == "assigned" and c.assignee_id is not None)
        ]
        start = (page - 1) * CONVERSATIONS_PER_PAGE
        return ConversationPage(
            conversations=[
                c.model_copy(deep=True) for c in selected[start : start + CONVERSATIONS_PER_PAGE]
            ],
            counts=counts,
            page=page,
        )

    async def get_conversation(
        self, conversation_id: int, *, correlation_id: str | None = None
    ) -> ChatwootConversation | None:
        self._call("get_conversation", correlation_id)
        conversation = self.conversations.get(conversation_id)
        return conversation.model_copy(deep=True) if conversation is not None else None

    async def create_conversation(
        self,
        *,
        source_id: str,
        inbox_id: int,
        contact_id: int | None = None,
        status: ConversationStatus | None = None,
        assignee_id: int | None = None,
        team_id: int | None = None,
        message: str | None = None,
        additional_attributes: Mapping[str, Any] | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        labels: Sequence[str] | None = None,
        correlation_id: str | None = None,
    ) -> ChatwootConversation:
        self._call("create_conversation", correlation_id)
        conv_id = next(self._conversation_ids)
        now = int(time.time())
        meta: dict[str, Any] = {"channel": "Channel::Api"}
        if contact_id is not None:
            contact = self.contacts.get(contact_id)
            meta["sender"] = {"id": contact_id, "name": contact.name if contact else None}
        if assignee_id is not None:
            meta["assignee"] = {"id": assignee_id}
        if team_id is not None:
            meta["team"] = {"id": team_id}
        conversation = ChatwootConversation.model_validate(
            {
                "id": conv_id,
                "account_id": self.account_id,
                "inbox_id": inbox_id,
                "status": status or "open",
                "labels": list(labels or []),
                "additional_attributes": dict(additional_attributes or {}),
                "custom_attributes": dict(custom_attributes or {}),
                "meta": meta,
                "created_at": now,
                "updated_at": now,
                "last_activity_at": now,
                "source_id": source_id,
            }
        )
        self.conversations[conv_id] = conversation
        self.messages[conv_id] = []
        if message is not None:
            self._add_message(conv_id, message, "outgoing", False)
        return conversation.model_copy(deep=True)

    async def toggle_status(
        self,
        conversation_id: int,
        status: ToggleableStatus,
        *,
        correlation_id: str | None = None,
    ) -> ToggleStatusResult | None:
        check_toggle_status(status)
        self._call("toggle_status", correlation_id)
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return None
        self.conversations[conversation_id] = conversation.model_copy(update={"status": status})
        return ToggleStatusResult(
            success=True, conversation_id=conversation_id, current_status=status
        )

    # -- messages -----------------------------------------------------------------------

    def _add_message(
        self, conversation_id: int, content: str, message_type: str, private: bool
    ) -> ChatwootMessage:
        conversation = self.conversations[conversation_id]
        now = int(time.time())
        message = ChatwootMessage.model_validate(
            {
                "id": next(self._message_ids),
                "content": content,
                "message_type": message_type,
                "private": private,
                "conversation_id": conversation_id,
                "inbox_id": conversation.inbox_id,
                "account_id": self.account_id,
                "content_type": "text",
                "status": "sent",
                "sender_type": "agent" if message_type == "outgoing" else "contact",
                "created_at": now,
                "updated_at": now,
            }
        )
        self.messages[conversation_id].append(message)
        return message

    async def list_messages(
        self,
        conversation_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        correlation_id: str | None = None,
    ) -> list[ChatwootMessage]:
        self._call("list_messages", correlation_id)
        items = sorted(self.messages.get(conversation_id, []), key=lambda m: m.id)
        if before is not None:
            items = [m for m in items if m.id < before]
        if after is not None:
            items = [m for m in items if m.id > after]
            if before is None:
                return [m.model_copy(deep=True) for m in items[:MESSAGES_AFTER]]
        return [m.model_copy(deep=True) for m in items[-MESSAGES_BEFORE:]]

    async def create_message(
        self,
        conversation_id: int,
        *,
        content: str,
        message_type: str = "outgoing",
        private: bool = False,
        correlation_id: str | None = None,
    ) -> ChatwootMessage:
        check_message_type(message_type)
        self._call("create_message", correlation_id)
        if conversation_id not in self.conversations:
            # Never raise for a missing item: the message is kept with its conversation id.
            self.conversations[conversation_id] = ChatwootConversation(
                id=conversation_id, account_id=self.account_id, status="open"
            )
            self.messages[conversation_id] = []
        return self._add_message(conversation_id, content, message_type, private).model_copy(
            deep=True
        )


def _team_id(conversation: ChatwootConversation) -> int | None:
    team = conversation.meta.get("team")
    if isinstance(team, Mapping) and isinstance(team.get("id"), int):
        return int(team["id"])
    return None


def _attribute(contact: ChatwootContact, key: str) -> str | None:
    if key in ChatwootContact.model_fields:
        value = getattr(contact, key)
    elif key in contact.additional_attributes:
        value = contact.additional_attributes[key]
    else:
        value = contact.custom_attributes.get(key)
    return None if value is None else str(value).lower()


def _condition(contact: ChatwootContact, cond: FilterCondition) -> bool:
    value = _attribute(contact, cond.attribute_key)
    wanted = [v.lower() for v in cond.values]
    if cond.filter_operator == "equal_to":
        return value in wanted
    if cond.filter_operator == "not_equal_to":
        return value not in wanted
    contains = value is not None and any(w in value for w in wanted)
    return contains if cond.filter_operator == "contains" else not contains


def _matches(contact: ChatwootContact, conditions: Sequence[FilterCondition]) -> bool:
    if not conditions:
        return True
    result = _condition(contact, conditions[0])
    for previous, cond in itertools.pairwise(conditions):
        current = _condition(contact, cond)
        result = (result or current) if previous.query_operator == "OR" else (result and current)
    return result
