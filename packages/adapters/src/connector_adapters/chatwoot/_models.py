"""Typed Chatwoot payloads. Unknown fields are kept; nulls and both server shapes accepted."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from connector_core import SerializationError


def _to_datetime(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("not a timestamp")
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        value = float(value)
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            # pydantic turns only ValueError into a validation error; 1e300 or inf here
            # would otherwise escape as OverflowError.
            raise ValueError("timestamp out of range") from None
    return value


def _epoch(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


Timestamp = Annotated[
    datetime | None,
    BeforeValidator(_to_datetime),
    PlainSerializer(_epoch, return_type=int | None),
]
"""Chatwoot sends epoch seconds (and ISO strings in some webhooks); serialized as epoch."""


def _empty_dict(value: Any) -> Any:
    return {} if value is None else value


def _empty_list(value: Any) -> Any:
    return [] if value is None else value


def _false(value: Any) -> Any:
    return False if value is None else value


JsonDict = Annotated[dict[str, Any], BeforeValidator(_empty_dict)]
StrList = Annotated[list[str], BeforeValidator(_empty_list)]
Flag = Annotated[bool, BeforeValidator(_false)]


class ChatwootModel(BaseModel):
    """Base of every Chatwoot payload: unknown fields are kept (``model_extra``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ChatwootInbox(ChatwootModel):
    id: int | None = None
    name: str | None = None
    channel_id: int | None = None
    channel_type: str | None = None
    provider: str | None = None
    avatar_url: str | None = None


class ChatwootContactInbox(ChatwootModel):
    source_id: str | None = None
    inbox: ChatwootInbox | None = None


class ChatwootContact(ChatwootModel):
    """A Chatwoot contact. String fields may be null (the server sends null)."""

    id: int
    name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    identifier: str | None = None
    thumbnail: str | None = None
    blocked: Flag = False
    availability_status: str | None = None
    additional_attributes: JsonDict = Field(default_factory=dict)
    custom_attributes: JsonDict = Field(default_factory=dict)
    last_activity_at: Timestamp = None
    created_at: Timestamp = None
    contact_inboxes: Annotated[list[ChatwootContactInbox], BeforeValidator(_empty_list)] = Field(
        default_factory=list
    )


class ContactPage(ChatwootModel):
    """One page of contacts (15 per page); an empty page ends the listing."""

    contacts: list[ChatwootContact] = Field(default_factory=list)
    count: int | None = None
    """Total matching contacts, when the server says."""
    page: int = 1


class FilterCondition(ChatwootModel):
    """One condition of ``filter_contacts``; ``query_operator`` joins it to the next."""

    attribute_key: str = Field(min_length=1)
    filter_operator: Literal["equal_to", "not_equal_to", "contains", "does_not_contain"]
    values: list[str]
    query_operator: Literal["AND", "OR"] | None = None


ConversationStatus = Literal["open", "resolved", "pending", "snoozed"]
ConversationStatusFilter = Literal["all", "open", "resolved", "pending", "snoozed"]
ToggleableStatus = Literal["open", "resolved", "pending"]
AssigneeType = Literal["me", "unassigned", "all", "assigned"]
MessageType = Literal["incoming", "outgoing", "activity", "template"]

_MESSAGE_TYPES: dict[int, str] = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}


def _message_type(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return _MESSAGE_TYPES.get(value, str(value))
    return value


class ChatwootMessage(ChatwootModel):
    """A message. ``message_type`` is a name; the server's integer codes are translated."""

    id: int
    content: str | None = None
    message_type: Annotated[str | None, BeforeValidator(_message_type)] = None
    private: Flag = False
    conversation_id: int | None = None
    inbox_id: int | None = None
    account_id: int | None = None
    content_type: str | None = None
    content_attributes: JsonDict = Field(default_factory=dict)
    status: str | None = None
    sender_type: str | None = None
    sender_id: int | None = None
    source_id: str | None = None
    created_at: Timestamp = None
    updated_at: Timestamp = None


class ChatwootConversation(ChatwootModel):
    """A conversation; ``meta`` carries the sender (contact) and assignee when listed."""

    id: int
    account_id: int | None = None
    inbox_id: int | None = None
    uuid: str | None = None
    status: str | None = None
    priority: str | None = None
    labels: StrList = Field(default_factory=list)
    muted: Flag = False
    unread_count: int | None = None
    additional_attributes: JsonDict = Field(default_factory=dict)
    custom_attributes: JsonDict = Field(default_factory=dict)
    meta: JsonDict = Field(default_factory=dict)
    messages: Annotated[list[ChatwootMessage], BeforeValidator(_empty_list)] = Field(
        default_factory=list
    )
    created_at: Timestamp = None
    updated_at: Timestamp = None
    last_activity_at: Timestamp = None

    @property
    def contact_id(self) -> int | None:
        """The id of the conversation's contact (``meta.sender.id``), when known."""
        sender = self.meta.get("sender")
        return _whole_number(sender.get("id")) if isinstance(sender, Mapping) else None

    @property
    def assignee_id(self) -> int | None:
        """The id of the assigned agent (``meta.assignee.id``), when known."""
        assignee = self.meta.get("assignee")
        return _whole_number(assignee.get("id")) if isinstance(assignee, Mapping) else None


class ConversationPage(ChatwootModel):
    """One page of conversations and the server's counts (mine, unassigned, ...)."""

    conversations: list[ChatwootConversation] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    page: int = 1


class ToggleStatusResult(ChatwootModel):
    success: bool = True
    conversation_id: int | None = None
    current_status: str | None = None


# -- parsing both shapes --------------------------------------------------------------

ModelT = TypeVar("ModelT", bound=ChatwootModel)


def _whole_number(value: Any) -> int | None:
    """``value`` as an int when it is one (or a finite, whole float); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value)


def _fail(what: str, detail: str) -> SerializationError:
    return SerializationError(
        f"unexpected Chatwoot response for {what}: {detail}", connector="chatwoot"
    )


def validate(model: type[ModelT], data: Any, what: str) -> ModelT:
    """``model.model_validate(data)``; raises SerializationError naming ``what`` for
    anything it cannot take (every decode failure of a payload is one)."""
    try:
        return model.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError
        raise _fail(what, str(exc)) from exc
    except RecursionError:
        pass  # raised below, not chained: its traceback is only the recursion
    raise _fail(what, "nested too deeply")


def parse_contact_page(body: Any, *, page: int) -> ContactPage:
    """``{"meta": {"count", "current_page"}, "payload": [...]}`` -> ContactPage.

    Raises SerializationError when the body has another shape.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("payload", []), list):
        raise _fail("a contact list", "expected an object with a 'payload' array")
    meta = body.get("meta") or {}
    count = _whole_number(meta.get("count")) if isinstance(meta, Mapping) else None
    contacts = [
        validate(ChatwootContact, item, "a contact list") for item in body.get("payload") or []
    ]
    return ContactPage(
        contacts=contacts, count=count if count is not None and count >= 0 else None, page=page
    )


def parse_contact(body: Any) -> ChatwootContact | None:
    """A contact from any of Chatwoot's shapes; None when the body holds none.

    Accepts ``{"payload": {...contact}}`` (show, server update),
    ``{"payload": {"contact": {...}, "contact_inbox": {...}}}`` (server create),
    ``{"payload": [{...contact}], "id": ...}`` (the document's create) and a bare
    contact object. Raises SerializationError for a malformed contact.
    """
    if not isinstance(body, Mapping):
        return None
    candidate: Any = body
    payload = body.get("payload")
    if isinstance(payload, Mapping):
        inner = payload.get("contact")
        candidate = inner if isinstance(inner, Mapping) else payload
    elif isinstance(payload, list):
        first = payload[0] if payload else {}
        if not isinstance(first, Mapping):
            raise _fail("a contact", "the 'payload' array holds no contact object")
        candidate = {**first, **({"id": body["id"]} if "id" in body else {})}
    if not isinstance(candidate, Mapping) or candidate.get("id") is None:
        return None
    return validate(ChatwootContact, candidate, "a contact")


def parse_conversation_page(body: Any, *, page: int) -> ConversationPage:
    """``{"data": {"meta": {...counts}, "payload": [...]}}`` (or without ``data``)."""
    data = body.get("data", body) if isinstance(body, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(data.get("payload", []), list):
        raise _fail("a conversation list", "expected 'data' with a 'payload' array")
    meta = data.get("meta") or {}
    counts = {
        str(k): n
        for k, v in (meta.items() if isinstance(meta, Mapping) else ())
        if (n := _whole_number(v)) is not None
    }
    items = [
        validate(ChatwootConversation, c, "a conversation list") for c in data.get("payload") or []
    ]
    return ConversationPage(conversations=items, counts=counts, page=page)


def parse_model(model: type[ModelT], body: Any, what: str) -> ModelT:
    """Validate ``body`` as ``model`` (unwrapping a ``payload`` object when present)."""
    if isinstance(body, Mapping) and isinstance(body.get("payload"), Mapping):
        body = body["payload"]
    return validate(model, body, what)
