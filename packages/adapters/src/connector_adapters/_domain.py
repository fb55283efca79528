"""The canonical model adapters map vendor payloads into, and the events they publish."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


class DomainEvent(BaseModel):
    """Something that happened to a canonical entity, as published by an adapter.

    ``type`` is ``<entity>.<verb>`` (``contact.created``); ``entity_id`` is the id in
    the source system; ``correlation_id`` ties the event to the call or sync run that
    caused it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=_new_id)
    type: str = Field(min_length=1)
    source_system: str = Field(min_length=1)
    entity_type: str = Field(min_length=1)
    entity_id: str = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime = Field(default_factory=_now)
    correlation_id: str | None = None


class SourceReference(BaseModel):
    """Where a canonical entity comes from: a system, its entity type and its id there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str = Field(min_length=1)
    """``"chatwoot"``, ``"salesforce"``, ..."""
    entity_type: str = Field(min_length=1)
    id: str = Field(min_length=1)
    account: str | None = None
    """The tenant inside the system (Chatwoot account id, Salesforce org id)."""


class Contact(BaseModel):
    """A person the business talks to, independent of any vendor.

    ``sources`` lists the records in vendor systems this contact was built from;
    ``attributes`` keeps vendor custom fields by name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    """The business's own id for the person (Chatwoot's ``identifier``)."""
    blocked: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)
    additional_attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    last_activity_at: datetime | None = None
    sources: tuple[SourceReference, ...] = ()

    def source(self, system: str) -> SourceReference | None:
        """This contact's reference in ``system``, if it has one."""
        for ref in self.sources:
            if ref.system == system:
                return ref
        return None
