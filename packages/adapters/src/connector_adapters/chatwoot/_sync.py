"""sync_contacts: Chatwoot contacts into a table, with events and checkpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from connector_adapters._domain import Contact, SourceReference
from connector_adapters._ports import EventPublisher, JsonObject, StateStore
from connector_adapters._sync import (
    IncrementalSync,
    ProgressCallback,
    SourceBatch,
    SyncItem,
    SyncReport,
)
from connector_adapters.chatwoot._client import ChatwootClient, check_sort, new_correlation_id
from connector_adapters.chatwoot._models import ChatwootContact
from connector_core import Writable

SOURCE_SYSTEM = "chatwoot"
DEFAULT_CONTACTS_TABLE = "chatwoot_contacts"
DEFAULT_SORT = "email"

CONTACT_COLUMNS: dict[str, str] = {
    "chatwoot_id": "bigint PRIMARY KEY",
    "account_id": "bigint",
    "name": "text",
    "email": "text",
    "phone_number": "text",
    "identifier": "text",
    "blocked": "boolean NOT NULL DEFAULT false",
    "additional_attributes": "jsonb NOT NULL DEFAULT '{}'::jsonb",
    "custom_attributes": "jsonb NOT NULL DEFAULT '{}'::jsonb",
    "created_at": "timestamptz",
    "last_activity_at": "timestamptz",
    "synced_at": "timestamptz",
}
"""The columns of the contacts table ``sync_contacts`` writes (PostgreSQL types)."""


def contacts_table_ddl(table: str = DEFAULT_CONTACTS_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the contacts table (``table`` may be schema.table)."""
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))
    columns = ",\n  ".join(f'"{name}" {sql_type}' for name, sql_type in CONTACT_COLUMNS.items())
    return f"CREATE TABLE IF NOT EXISTS {quoted} (\n  {columns}\n)"


def to_canonical_contact(contact: ChatwootContact, *, account_id: int | None = None) -> Contact:
    """Map a Chatwoot contact to the canonical :class:`Contact` (with its source reference)."""
    return Contact(
        name=contact.name,
        email=contact.email,
        phone=contact.phone_number,
        external_id=contact.identifier,
        blocked=contact.blocked,
        attributes=dict(contact.custom_attributes),
        additional_attributes=dict(contact.additional_attributes),
        created_at=contact.created_at,
        last_activity_at=contact.last_activity_at,
        sources=(
            SourceReference(
                system=SOURCE_SYSTEM,
                entity_type="contact",
                id=str(contact.id),
                account=str(account_id) if account_id is not None else None,
            ),
        ),
    )


def contact_row(contact: ChatwootContact, *, account_id: int | None = None) -> dict[str, Any]:
    """The table row for a contact. The thumbnail (a signed, changing URL) is left out."""
    return {
        "chatwoot_id": contact.id,
        "account_id": account_id,
        "name": contact.name,
        "email": contact.email,
        "phone_number": contact.phone_number,
        "identifier": contact.identifier,
        "blocked": contact.blocked,
        "additional_attributes": dict(contact.additional_attributes),
        "custom_attributes": dict(contact.custom_attributes),
        "created_at": contact.created_at,
        "last_activity_at": contact.last_activity_at,
    }


class ChatwootContactSource:
    """Contacts page by page (15 each, in ``sort`` order); the position is the next page."""

    def __init__(
        self, client: ChatwootClient, *, sort: str | None = DEFAULT_SORT, correlation_id: str
    ) -> None:
        self.client = client
        self.sort = check_sort(sort)
        self.correlation_id = correlation_id

    async def batches(
        self, position: JsonObject | None
    ) -> AsyncIterator[SourceBatch[ChatwootContact]]:
        page = int((position or {}).get("page", 1))
        while True:
            result = await self.client.list_contacts(
                page=page, sort=self.sort, correlation_id=self.correlation_id
            )
            if not result.contacts:
                return
            page += 1
            yield SourceBatch(items=result.contacts, position={"page": page})


async def sync_contacts(
    client: ChatwootClient,
    sink: Writable,
    *,
    publisher: EventPublisher,
    state: StateStore,
    table: str = DEFAULT_CONTACTS_TABLE,
    account_id: int | None = None,
    name: str | None = None,
    sort: str | None = DEFAULT_SORT,
    on_progress: ProgressCallback | None = None,
    correlation_id: str | None = None,
) -> SyncReport:
    """Sync every Chatwoot contact into ``table`` of ``sink``, resumably.

    Reads all pages (Chatwoot has no "changed since" filter on contacts), writes
    only contacts whose content changed since the last run (a fingerprint per
    contact is kept in ``state``), publishes ``contact.created`` /
    ``contact.updated`` events with the canonical contact as payload, and
    checkpoints the next page after each committed page. The sink must upsert on
    ``chatwoot_id`` (a PostgresConnector writing to a table whose primary key is
    ``chatwoot_id`` does; see :func:`contacts_table_ddl`).

    Raises the ConnectorError of the client, sink or state store that failed; a
    re-run resumes from the last committed page.
    """
    cid = new_correlation_id(correlation_id)

    def mapper(contact: ChatwootContact) -> SyncItem:
        canonical = to_canonical_contact(contact, account_id=account_id)
        return SyncItem(
            entity_id=str(contact.id),
            record=contact_row(contact, account_id=account_id),
            payload=canonical.model_dump(mode="json"),
        )

    sync: IncrementalSync[ChatwootContact] = IncrementalSync(
        name=name or f"chatwoot-contacts-{account_id or 'default'}-{table}",
        source=ChatwootContactSource(client, sort=sort, correlation_id=cid),
        mapper=mapper,
        sink=sink,
        stream=table,
        publisher=publisher,
        state=state,
        source_system=SOURCE_SYSTEM,
        entity_type="contact",
        on_progress=on_progress,
    )
    return await sync.run(correlation_id=cid)
