"""sync_contacts: Chatwoot contacts into a table, with events and checkpoints."""

from __future__ import annotations

import logging
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

logger = logging.getLogger("connector_adapters.chatwoot.sync")

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
    """Contacts page by page (15 each, in ``sort`` order); the position is the next page.

    Chatwoot pages contacts by offset and its ``sort`` takes one field with no
    tie-breaker (contacts with the same or a NULL email have no stable order), so
    a page number is only an approximate place to resume. To lose nothing:

    - a run that resumes at page *R* reads *R* to the end, then scans pages
      1..R-1 again (contacts created or deleted before *R* while the sync was
      stopped shift the pages; the sync's fingerprints make unchanged contacts
      cost no write and no event). Whatever page a run resumes at, it reads the
      whole listing once.
    - the source counts the distinct contacts it saw against Chatwoot's
      ``meta.count``; when it saw fewer (ties reordered between requests, or
      contacts created behind the scan), it rescans from page 1, up to
      ``max_rescans`` times, and :meth:`unseen` reports what is still missing
      (the sync then reports itself incomplete).
    """

    def __init__(
        self,
        client: ChatwootClient,
        *,
        sort: str | None = DEFAULT_SORT,
        correlation_id: str,
        max_rescans: int = 2,
    ) -> None:
        if max_rescans < 0:
            raise ValueError("max_rescans must be >= 0")
        self.client = client
        self.sort = check_sort(sort)
        self.correlation_id = correlation_id
        self.max_rescans = max_rescans
        self._seen: set[int] = set()
        self._count: int | None = None

    async def _fetch(self, page: int) -> list[ChatwootContact]:
        result = await self.client.list_contacts(
            page=page, sort=self.sort, correlation_id=self.correlation_id
        )
        if result.count is not None:
            self._count = result.count
        self._seen.update(contact.id for contact in result.contacts)
        return list(result.contacts)

    def unseen(self) -> int:
        """How many contacts Chatwoot counted that the last pass never yielded."""
        if self._count is None:
            return 0
        return max(0, self._count - len(self._seen))

    async def batches(
        self, position: JsonObject | None
    ) -> AsyncIterator[SourceBatch[ChatwootContact]]:
        start = max(1, int((position or {}).get("page", 1)))
        self._seen, self._count = set(), None
        page = start
        while contacts := await self._fetch(page):
            page += 1
            yield SourceBatch(items=contacts, position={"page": page})
        if start > 1:
            logger.info("contacts sync resumed at page %d: verifying pages 1..%d", start, start - 1)
            for page in range(1, start):
                contacts = await self._fetch(page)
                if not contacts:
                    break
                # Resuming here starts a new full circle at page + 1 (see the class doc).
                yield SourceBatch(items=contacts, position={"page": page + 1, "verify": start})
        rescans = 0
        while self.unseen() > 0 and rescans < self.max_rescans:
            rescans += 1
            logger.warning(
                "contacts sync saw %d of %d contacts; rescanning (%d of %d)",
                len(self._seen), self._count, rescans, self.max_rescans,
            )  # fmt: skip
            page = 1
            while contacts := await self._fetch(page):
                page += 1
                yield SourceBatch(items=contacts, position={"page": page, "rescan": rescans})


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

    A run that resumes from a checkpoint also re-reads the pages before it, and a
    pass that saw fewer contacts than Chatwoot counts rescans (see
    :class:`ChatwootContactSource`), so a resumed run loses no contact; unchanged
    contacts are neither written nor announced again. The report's ``completed``
    is False (and a WARNING is logged) when the sink rejected records or contacts
    stayed unseen; the next run then starts a new pass and retries them.

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
