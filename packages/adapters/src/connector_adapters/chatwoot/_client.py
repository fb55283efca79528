"""The one Chatwoot client interface; managed (HTTP) and mock clients implement it."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

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
from connector_core import CheckResult, InvalidRequestError

CONTACTS_PER_PAGE = 15
"""Chatwoot's fixed page size for contact listings, search and filter."""

CONTACT_SORTS = frozenset(
    {
        "name",
        "email",
        "phone_number",
        "last_activity_at",
        "-name",
        "-email",
        "-phone_number",
        "-last_activity_at",
    }
)


@runtime_checkable
class ChatwootClient(Protocol):
    """Chatwoot's Application API for one account.

    Every operation takes a keyword-only ``correlation_id`` (one is generated when
    omitted); the managed client sends it as a header. Lookups of a missing item
    return None (or False, or an empty list) in both implementations.

    Raises (managed): AuthenticationError (rejected ``api_access_token``),
    PermissionDeniedError, RateLimitedError (after retries), InvalidRequestError
    (bad input, including a blank search query before any request),
    ServiceUnavailableError, ConnectorTimeoutError, SerializationError.
    """

    async def connect(self) -> None:
        """Open what the client needs (nothing for the mock)."""
        ...

    async def disconnect(self) -> None:
        """Close it again (idempotent; never raises connector errors)."""
        ...

    async def check(self) -> CheckResult:
        """Connect, make one real call, report; never raises."""
        ...

    async def ping(self) -> float:
        """One real round trip (the managed client's profile GET); seconds."""
        ...

    @property
    def is_connected(self) -> bool: ...

    # contacts
    async def list_contacts(
        self, *, page: int = 1, sort: str | None = None, correlation_id: str | None = None
    ) -> ContactPage: ...

    def iter_contacts(
        self, *, sort: str | None = None, correlation_id: str | None = None
    ) -> AsyncIterator[ChatwootContact]: ...

    async def get_contact(
        self, contact_id: int, *, correlation_id: str | None = None
    ) -> ChatwootContact | None: ...

    async def search_contacts(
        self,
        q: str,
        *,
        page: int = 1,
        sort: str | None = None,
        correlation_id: str | None = None,
    ) -> ContactPage: ...

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
    ) -> ChatwootContact: ...

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
    ) -> ChatwootContact | None: ...

    async def delete_contact(
        self, contact_id: int, *, correlation_id: str | None = None
    ) -> bool: ...

    async def filter_contacts(
        self,
        conditions: Sequence[FilterCondition],
        *,
        page: int = 1,
        correlation_id: str | None = None,
    ) -> ContactPage: ...

    # conversations
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
    ) -> ConversationPage: ...

    def iter_conversations(
        self,
        *,
        status: ConversationStatusFilter | None = None,
        assignee_type: AssigneeType | None = None,
        inbox_id: int | None = None,
        team_id: int | None = None,
        labels: Sequence[str] | None = None,
        correlation_id: str | None = None,
    ) -> AsyncIterator[ChatwootConversation]: ...

    async def get_conversation(
        self, conversation_id: int, *, correlation_id: str | None = None
    ) -> ChatwootConversation | None: ...

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
        correlation_id: str | None = None,
    ) -> ChatwootConversation: ...

    async def toggle_status(
        self,
        conversation_id: int,
        status: ToggleableStatus,
        *,
        correlation_id: str | None = None,
    ) -> ToggleStatusResult | None: ...

    # messages
    async def list_messages(
        self,
        conversation_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        correlation_id: str | None = None,
    ) -> list[ChatwootMessage]: ...

    async def create_message(
        self,
        conversation_id: int,
        *,
        content: str,
        message_type: str = "outgoing",
        private: bool = False,
        correlation_id: str | None = None,
    ) -> ChatwootMessage: ...


class PagedIterators:
    """``iter_contacts`` and ``iter_conversations`` for a client, over its own
    ``list_contacts``/``list_conversations`` (one correlation id for every page).
    Chatwoot's list endpoints do not say how many pages there are: iteration ends at
    the first empty page."""

    async def iter_contacts(
        self: ChatwootClient, *, sort: str | None = None, correlation_id: str | None = None
    ) -> AsyncIterator[ChatwootContact]:
        list_page = functools.partial(
            self.list_contacts, sort=sort, correlation_id=new_correlation_id(correlation_id)
        )
        page = 1
        while contacts := (await list_page(page=page)).contacts:
            for contact in contacts:
                yield contact
            page += 1

    async def iter_conversations(
        self: ChatwootClient,
        *,
        status: ConversationStatusFilter | None = None,
        assignee_type: AssigneeType | None = None,
        inbox_id: int | None = None,
        team_id: int | None = None,
        labels: Sequence[str] | None = None,
        correlation_id: str | None = None,
    ) -> AsyncIterator[ChatwootConversation]:
        list_page = functools.partial(
            self.list_conversations,
            status=status,
            assignee_type=assignee_type,
            inbox_id=inbox_id,
            team_id=team_id,
            labels=labels,
            correlation_id=new_correlation_id(correlation_id),
        )
        page = 1
        while conversations := (await list_page(page=page)).conversations:
            for conversation in conversations:
                yield conversation
            page += 1


def new_correlation_id(given: str | None) -> str:
    """``given``, or a fresh UUID4 string when None."""
    return given if given else str(uuid.uuid4())


def check_search_query(q: str) -> str:
    """Reject a blank search (Chatwoot answers 422) before any request is made."""
    if not isinstance(q, str) or not q.strip():
        raise InvalidRequestError(
            "search_contacts needs a non-blank 'q' (Chatwoot rejects an empty search)",
            connector="chatwoot",
        )
    return q.strip()


def check_sort(sort: str | None) -> str | None:
    """Reject a sort Chatwoot does not know, naming the ones it does."""
    if sort is not None and sort not in CONTACT_SORTS:
        known = ", ".join(sorted(CONTACT_SORTS))
        raise InvalidRequestError(
            f"unknown contact sort {sort!r}; Chatwoot sorts by: {known}", connector="chatwoot"
        )
    return sort


def check_page(page: int) -> int:
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise InvalidRequestError(
            f"page must be an integer >= 1, got {page!r}", connector="chatwoot"
        )
    return page


def check_message_type(message_type: str) -> str:
    if message_type not in ("outgoing", "incoming"):
        raise InvalidRequestError(
            f"message_type must be 'outgoing' or 'incoming', got {message_type!r}",
            connector="chatwoot",
        )
    return message_type


def check_toggle_status(status: str) -> str:
    if status not in ("open", "resolved", "pending"):
        raise InvalidRequestError(
            f"status must be 'open', 'resolved' or 'pending', got {status!r}",
            connector="chatwoot",
        )
    return status
